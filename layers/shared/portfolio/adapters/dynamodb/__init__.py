"""The portfolio store on DynamoDB, by job:

- items.py: keys and the items of the PortfolioTable (transactions, the portfolio item with its
  positions, holder counts), to and from domain objects;
- listing.py: pages of transactions: the Query of a listing, its read size and cursor scope;
- store.py: PortfolioStore, the reads, the all-or-nothing commit and the batch calls.

Importing the package imports its modules (wiring's SnapStart preload walks packages one level deep).
"""

from portfolio.adapters.dynamodb.store import PortfolioStore, UnprocessedRequestsError, UnreadableItemError

__all__ = ["PortfolioStore", "UnprocessedRequestsError", "UnreadableItemError"]
