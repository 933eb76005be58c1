"""A listing of transactions as the store reads it: its Query, read size and cursor scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from portfolio.adapters.cursor import InvalidCursorError
from portfolio.adapters.dynamodb.listing import (
    MAX_ITEMS_PER_READ,
    cursor_position,
    cursor_scope,
    query_arguments,
    read_size,
    start_key,
)
from portfolio.domain.tokens import TokenId
from portfolio.domain.transactions import TransactionType
from portfolio.services.ports import TransactionListing

NOON_UTC = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NOON_UTC_IN_TOKYO = datetime(2024, 5, 1, 21, 0, tzinfo=timezone(timedelta(hours=9)))


def test_given_the_same_instants_in_two_time_zones_when_listed_then_the_query_and_the_cursor_scope_are_the_same():
    in_utc = TransactionListing(start=NOON_UTC, end=NOON_UTC + timedelta(days=1))
    in_tokyo = TransactionListing(start=NOON_UTC_IN_TOKYO, end=NOON_UTC_IN_TOKYO + timedelta(days=1))

    assert query_arguments("alice", in_utc) == query_arguments("alice", in_tokyo)
    assert cursor_scope("alice", in_utc) == cursor_scope("alice", in_tokyo)


def test_given_a_listing_when_scoped_then_the_scope_names_the_user_and_every_filter_but_not_the_page():
    listing = TransactionListing(
        limit=7,
        cursor="v1.x.y",
        chain="base",
        type=TransactionType.SELL,
        token=TokenId.parse("base:0x4200000000000000000000000000000000000006"),
        start=NOON_UTC,
    )

    assert cursor_scope("alice", listing) == (
        '["alice", "base", "sell", "base:0x4200000000000000000000000000000000000006", '
        '"2024-05-01T12:00:00+00:00", null]'
    )
    assert cursor_scope("alice", listing) == cursor_scope(
        "alice",
        TransactionListing(limit=50, chain="base", type=TransactionType.SELL, token=listing.token, start=NOON_UTC),
    )


def test_given_both_bounds_when_queried_then_both_are_inclusive():
    arguments = query_arguments("alice", TransactionListing(start=NOON_UTC, end=NOON_UTC))

    assert arguments["KeyConditionExpression"] == "pk = :pk AND txSort BETWEEN :from AND :to"
    assert arguments["ExpressionAttributeValues"][":from"] == {"S": "2024-05-01T12:00:00.000000Z"}
    assert arguments["ExpressionAttributeValues"][":to"] == {"S": "2024-05-01T12:00:00.000000Z$"}
    assert "FilterExpression" not in arguments


@pytest.mark.parametrize(
    ("listing", "wanted", "read"),
    [
        (TransactionListing(), 11, 11),
        (TransactionListing(start=NOON_UTC), 11, 11),
        (TransactionListing(type=TransactionType.BUY), 11, 44),
        (TransactionListing(chain="ethereum"), 400, MAX_ITEMS_PER_READ),
    ],
)
def test_given_a_listing_when_a_page_is_read_then_only_item_filters_read_ahead(listing, wanted, read):
    assert read_size(listing, wanted) == read


def test_given_a_page_that_stopped_at_an_item_when_continued_then_it_starts_after_that_item():
    item = {"pk": {"S": "USER#alice"}, "sk": {"S": "TX#t-1"}, "txSort": {"S": "2024-05-01T12:00:00.000000Z#t-1"}}

    assert start_key("alice", cursor_position(item)) == item


def test_given_a_position_with_other_fields_when_continued_then_the_cursor_is_rejected():
    with pytest.raises(InvalidCursorError):
        start_key("alice", {"sk": "TX#t-1", "txSort": "x", "pk": "USER#bob"})


@pytest.mark.parametrize(
    "fields",
    [
        {"limit": 0},
        {"start": datetime(2024, 5, 1, 12, 0)},
        {"start": NOON_UTC + timedelta(seconds=1), "end": NOON_UTC},
    ],
)
def test_given_a_listing_the_store_cannot_read_when_made_then_it_is_refused(fields):
    with pytest.raises(ValueError):
        TransactionListing(**fields)


def test_given_the_first_page_without_filters_when_keyed_for_the_cache_then_the_key_is_empty():
    assert TransactionListing().filter_key() == ""
    assert TransactionListing(limit=10).filter_key() != ""
