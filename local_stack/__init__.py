"""Runs the whole system on one machine: moto's server for AWS, a Redis, the coins API, the handlers."""
