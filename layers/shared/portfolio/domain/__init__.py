"""Pure domain: models and Decimal-exact accounting. No I/O here."""
