"""Cross-chain portfolio: domain, adapters and services shared by every function."""
