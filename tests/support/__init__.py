"""Real local stand-ins for outside systems: a Redis process, moto's server, a coins API."""
