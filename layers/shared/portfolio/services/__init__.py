"""Use cases the handlers call; each receives its adapters so tests can pass real or fake ones."""
