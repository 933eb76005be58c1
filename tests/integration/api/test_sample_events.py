"""The sample events in events/ (what `sam local invoke -e` sends) succeed through the real handler."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.api.conftest import Call

EVENTS = Path(__file__).resolve().parents[3] / "events"
# In the order a client would send them: record, read, change settings, delete; then a wallet's life, and an alert's.
SEQUENCE = [
    ("api-health.json", 200),
    ("api-post-transaction.json", 201),
    ("api-post-transactions-bulk.json", 201),
    ("api-get-portfolio.json", 200),
    ("api-get-assets.json", 200),
    ("api-get-performance.json", 200),
    ("api-get-transactions.json", 200),
    ("api-put-settings.json", 200),
    ("api-delete-transaction.json", 200),
    ("api-post-wallet.json", 201),
    ("api-get-wallets.json", 200),
    ("api-post-wallet-sync.json", 200),
    ("api-delete-wallet.json", 204),
    ("api-post-alert.json", 201),
    ("api-get-alerts.json", 200),
    ("api-delete-alert.json", 204),
]
SAMPLE_USER = "user-alice"


def as_user(event: dict[str, Any], user_id: str) -> dict[str, Any]:
    """The same event for another user, so tests sharing one Redis never share a portfolio."""
    return json.loads(
        json.dumps(event)
        .replace(f"/portfolios/{SAMPLE_USER}", f"/portfolios/{user_id}")
        .replace(f'"{SAMPLE_USER}"', f'"{user_id}"')
    )


def test_given_every_api_sample_event_exists_when_listing_then_each_is_replayed_here() -> None:
    if not EVENTS.is_dir() or not list(EVENTS.glob("api-*.json")):
        pytest.skip("no sample events yet")
    assert {path.name for path in EVENTS.glob("api-*.json")} == {name for name, _ in SEQUENCE}


def test_given_the_sample_events_when_replayed_in_order_then_each_succeeds(call: Call, user_id: str) -> None:
    if not all((EVENTS / name).is_file() for name, _ in SEQUENCE):
        pytest.skip("sample events incomplete")

    statuses = {}
    for name, _ in SEQUENCE:
        event = as_user(json.loads((EVENTS / name).read_text()), user_id)
        statuses[name] = call.event(event).status  # type: ignore[attr-defined]

    assert statuses == {name: expected for name, expected in SEQUENCE}
