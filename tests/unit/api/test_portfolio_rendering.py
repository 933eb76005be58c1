"""The bodies written from a valued portfolio are the view models' own JSON, byte for byte.

The API documents its answers with the models of domain/views.py; the bodies it serves (and a
refresh warms) are written straight from the valued figures, so nothing may tell them apart.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from portfolio.domain.accounting import replay
from portfolio.domain.asset_query import AssetQuery, AssetSort, SortOrder
from portfolio.domain.portfolio_record import CostBasisMethod, CostBasisScope
from portfolio.domain.prices import PriceQuote, PriceSource
from portfolio.domain.tokens import TokenId
from portfolio.domain.valuation import value_portfolio
from portfolio.domain.valued_portfolio import ValuedPortfolio
from portfolio.domain.views import AssetList
from portfolio.services.portfolio_rendering import assets_body, summary_body, warm_bodies
from portfolio.services.ports import CacheKind

from tests.unit.domain.builders import T0, UNLISTED_TOKEN, tx
from tests.unit.domain.test_accounting_properties import TOKENS, History, histories, prices

QUERIES = (
    AssetQuery(),
    AssetQuery(sort=AssetSort.PNL, order=SortOrder.ASC),
    AssetQuery(sort=AssetSort.SYMBOL),
    AssetQuery(chain="arbitrum", min_value_usd=Decimal("0.01")),
)

moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
) | st.just(T0)
quotes = st.builds(
    lambda token, price, moment, stale: PriceQuote(
        token=token.key, price=price, timestamp=moment, source=PriceSource.REDIS, stale=stale
    ),
    st.sampled_from(TOKENS),
    prices,
    moments,
    st.booleans(),
)


def assert_written_as_models(valued: ValuedPortfolio) -> None:
    view = valued.model()
    assert summary_body(valued) == view.summary.model_dump_json(by_alias=True).encode()
    for query in QUERIES:
        listed = AssetList(assets=[line.model() for line in query.apply(valued.assets)])
        assert assets_body(valued, query) == listed.model_dump_json(by_alias=True).encode()
    assert warm_bodies(valued) == {
        (CacheKind.PORTFOLIO, ""): summary_body(valued),
        (CacheKind.ASSETS, ""): assets_body(valued),
    }


@settings(max_examples=150, deadline=None)
@given(
    history=histories(),
    quoted=st.lists(quotes, max_size=len(TOKENS), unique_by=lambda quote: quote.token),
    method=st.sampled_from(list(CostBasisMethod)),
    scope=st.sampled_from(list(CostBasisScope)),
    updated_at=st.none() | moments,
)
def test_given_any_portfolio_at_any_prices_then_its_bodies_are_the_models_json(
    history: History,
    quoted: list[PriceQuote],
    method: CostBasisMethod,
    scope: CostBasisScope,
    updated_at: datetime | None,
) -> None:
    # Given any valid history, under any method and scope, valued at quotes for some of its tokens
    ledger = replay(history.transactions, method, scope=scope)

    # When it is valued
    valued = value_portfolio("alice", ledger, {quote.token: quote for quote in quoted}, updated_at=updated_at)

    # Then every body written from it is what its view model would write
    assert_written_as_models(valued)


def test_given_symbols_that_need_escaping_and_odd_times_then_the_bodies_are_still_the_models_json() -> None:
    # Given an unlisted token whose quote names it with quotes, backslashes and characters beyond ASCII,
    # a symbol its contract answered with a control character, and a quote time with microseconds
    named = TokenId("ethereum", UNLISTED_TOKEN)
    contract_only = TokenId("base", UNLISTED_TOKEN)
    ledger = replay(
        [
            tx("buy", "1.5", price="2", token=UNLISTED_TOKEN),
            tx("buy", "1E+3", price="0.000001", token=UNLISTED_TOKEN, chain="base"),
            tx("transfer_in", "0.000000001", token=UNLISTED_TOKEN, hour=1, category="defi"),
        ],
        CostBasisMethod.FIFO,
    )
    observed = datetime(2026, 12, 1, 10, 0, 0, 120_000, tzinfo=UTC)
    quote = PriceQuote(
        token=named.key,
        price=Decimal("1E-7"),
        symbol='My "Token" \\ é 😀 \u2028',
        timestamp=observed,
        source=PriceSource.FRESH,
        stale=True,
    )
    later = PriceQuote(
        token=contract_only.key, price=Decimal("12.5"), timestamp=observed + timedelta(days=1), source=PriceSource.REDIS
    )

    # When it is valued
    valued = value_portfolio(
        "bob\u00e9",
        ledger,
        {quote.token: quote, later.token: later},
        updated_at=observed,
        contract_symbols={contract_only: "CTRL\x01"},
    )

    # Then the bodies are the models' JSON, escapes and all
    assert_written_as_models(valued)
