"""Adapters: one module per outside system (DynamoDB, Redis, the coins API, SQS). Only these touch I/O clients."""
