"""The response bodies of a valued portfolio: the one place they are written, for the API's cache
misses and for the warm writes after a refresh or a recorded transaction alike.

Written straight from the valued figures (domain/valued_portfolio.py) rather than through the view
models: a refresh writes two bodies of dozens of holdings for every active user every cycle. The
JSON is the models' own, byte for byte (camelCase keys in field order, decimal strings, pydantic's
datetimes), which tests/unit/api/test_portfolio_rendering.py holds for random portfolios.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from portfolio.domain.asset_query import AssetQuery
from portfolio.domain.money import to_decimal_string
from portfolio.domain.valued_portfolio import (
    AssetShareLine,
    BreakdownLines,
    CategoryShareLine,
    ChainAmountLine,
    ChainShareLine,
    HoldingLine,
    MissingAcquisitionLine,
    ValuedPortfolio,
)
from portfolio.services.ports import CacheKind

_UNFILTERED = AssetQuery()
_NO_OFFSET = timedelta(0)


@lru_cache(maxsize=65_536)
def _text(value: str) -> str:
    """A JSON string; symbols, assets and addresses repeat across users, so each is escaped once."""
    return json.dumps(value, ensure_ascii=False)


@lru_cache(maxsize=65_536)
def _token_fields(chain: str, token_address: str) -> str:
    """`"chain":...,"tokenAddress":...`: a token's two fields, escaped once for every line of it."""
    return f'"chain":{_text(chain)},"tokenAddress":{_text(token_address)}'


@lru_cache(maxsize=65_536)
def _asset_fields(asset: str, symbol: str) -> str:
    return f'"asset":{_text(asset)},"symbol":{_text(symbol)}'


def _decimal(value: Decimal | None) -> str:
    return "null" if value is None else f'"{to_decimal_string(value)}"'


def json_datetime(value: datetime) -> str:
    """As pydantic writes a datetime: ISO 8601, with "Z" for UTC."""
    text = value.isoformat()
    return text[: -len("+00:00")] + "Z" if value.utcoffset() == _NO_OFFSET else text


@lru_cache(maxsize=4_096)
def _moment(value: datetime) -> str:
    return f'"{json_datetime(value)}"'


def _optional_moment(value: datetime | None) -> str:
    return "null" if value is None else _moment(value)


def _holding(line: HoldingLine) -> str:
    # The hottest function of a refresh: figures written inline, and the priced ones (which are all
    # None together when the holding has no quote) in one piece.
    text, number = _text, to_decimal_string
    if line.price_usd is None or line.value_usd is None or line.unrealized_pnl_usd is None:
        priced = '"priceUsd":null,"valueUsd":null'
        pnl = f'"unrealizedPnlUsd":null,"realizedPnlUsd":"{number(line.realized_pnl_usd)}"'
    else:
        priced = f'"priceUsd":"{number(line.price_usd)}","valueUsd":"{number(line.value_usd)}"'
        pnl = (
            f'"unrealizedPnlUsd":"{number(line.unrealized_pnl_usd)}","realizedPnlUsd":"{number(line.realized_pnl_usd)}"'
        )
    return (
        f"{{{_token_fields(line.chain, line.token_address)},{_asset_fields(line.asset, line.symbol)},"
        f'"category":{text(line.category)},"amount":"{number(line.amount)}",{priced},'
        f'"costBasisUsd":"{number(line.cost_basis_usd)}",{pnl},"roiPercent":{_decimal(line.roi_percent)},'
        f'"sharePercent":{_decimal(line.share_percent)},"priceTimestamp":{_optional_moment(line.price_timestamp)},'
        f'"stale":{"true" if line.stale else "false"},"unknownCostAmount":"{number(line.unknown_cost_amount)}",'
        f'"missingAcquisitionAmount":"{number(line.missing_acquisition_amount)}"}}'
    )


def _chain_amount(line: ChainAmountLine, value: str | None = None) -> str:
    """`value`: the line's valueUsd already written (its asset's, when the asset is on one chain)."""
    return (
        f"{{{_token_fields(line.chain, line.token_address)},"
        f'"amount":"{to_decimal_string(line.amount)}","valueUsd":{value or _decimal(line.value_usd)}}}'
    )


def _asset_share(line: AssetShareLine) -> str:
    value = to_decimal_string(line.value_usd)
    if len(line.chains) == 1 and line.chains[0].value_usd is line.value_usd:
        # An asset held on one chain (most are): its value is the chain's, written once.
        chains = _chain_amount(line.chains[0], f'"{value}"')
    else:
        chains = ",".join(map(_chain_amount, line.chains))
    return (
        f'{{{_asset_fields(line.asset, line.symbol)},"valueUsd":"{value}",'
        f'"sharePercent":"{to_decimal_string(line.share_percent)}","chains":[{chains}]}}'
    )


def _share(name: str, line: ChainShareLine | CategoryShareLine) -> str:
    """A line of the breakdown by chain or by category: its `name` first (line[0])."""
    return (
        f'{{"{name}":{_text(line[0])},"valueUsd":"{to_decimal_string(line.value_usd)}",'
        f'"sharePercent":"{to_decimal_string(line.share_percent)}"}}'
    )


def _missing_acquisition(line: MissingAcquisitionLine) -> str:
    return (
        f'{{{_token_fields(line.chain, line.token_address)},"symbol":{_text(line.symbol)},'
        f'"amount":{_decimal(line.amount)},"valueUsd":{_decimal(line.value_usd)}}}'
    )


def _breakdown(lines: BreakdownLines) -> str:
    return (
        f'{{"byAsset":[{",".join(map(_asset_share, lines.by_asset))}],'
        f'"byChain":[{",".join(_share("chain", line) for line in lines.by_chain)}],'
        f'"byCategory":[{",".join(_share("category", line) for line in lines.by_category)}]}}'
    )


def summary_body(valued: ValuedPortfolio) -> bytes:
    summary = valued.summary
    return (
        f'{{"userId":{_text(summary.user_id)},"totalValueUsd":{_decimal(summary.total_value_usd)},'
        f'"costBasisUsd":{_decimal(summary.cost_basis_usd)},"realizedPnlUsd":{_decimal(summary.realized_pnl_usd)},'
        f'"unrealizedPnlUsd":{_decimal(summary.unrealized_pnl_usd)},"totalPnlUsd":{_decimal(summary.total_pnl_usd)},'
        f'"investedUsd":{_decimal(summary.invested_usd)},"roiPercent":{_decimal(summary.roi_percent)},'
        f'"unknownCostBasisValueUsd":{_decimal(summary.unknown_cost_basis_value_usd)},'
        f'"incomeUsd":{_decimal(summary.income_usd)},"untrackedProceedsUsd":{_decimal(summary.untracked_proceeds_usd)},'
        f'"withdrawnCostUsd":{_decimal(summary.withdrawn_cost_usd)},"withdrawnGainUsd":{_decimal(summary.withdrawn_gain_usd)},'
        f'"missingAcquisitions":[{",".join(map(_missing_acquisition, summary.missing_acquisitions))}],'
        f'"missingAcquisitionPnlUsd":{_decimal(summary.missing_acquisition_pnl_usd)},'
        f'"breakdown":{_breakdown(summary.breakdown)},"pricesAsOf":{_optional_moment(summary.prices_as_of)},'
        f'"stalePriceCount":{summary.stale_price_count},"unpricedCount":{summary.unpriced_count},'
        f'"holdingCount":{summary.holding_count},"costBasisMethod":{_text(summary.cost_basis_method)},'
        f'"costBasisScope":{_text(summary.cost_basis_scope)},"updatedAt":{_optional_moment(summary.updated_at)}}}'
    ).encode()


def assets_body(valued: ValuedPortfolio, query: AssetQuery = _UNFILTERED) -> bytes:
    # The valued list is already in the default order.
    lines = valued.assets if query == _UNFILTERED else query.apply(valued.assets)
    return f'{{"assets":[{",".join(map(_holding, lines))}]}}'.encode()


def warm_bodies(valued: ValuedPortfolio, *, asset_list: bool = True) -> dict[tuple[CacheKind, str], bytes]:
    """What the next read most likely asks for: the summary, and the unfiltered asset list when
    `asset_list` (the valued portfolio must then hold it)."""
    bodies = {(CacheKind.PORTFOLIO, ""): summary_body(valued)}
    if asset_list:
        bodies[(CacheKind.ASSETS, _UNFILTERED.filter_key())] = assets_body(valued)
    return bodies
