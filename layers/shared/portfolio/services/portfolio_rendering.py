"""The response bodies of a computed portfolio: the one place they are serialized, for the API's
cache misses and for the warm writes after a refresh or a recorded transaction alike."""

from __future__ import annotations

from pydantic import BaseModel

from portfolio.domain.asset_query import AssetQuery
from portfolio.domain.views import AssetList, PortfolioView
from portfolio.services.ports import CacheKind

_UNFILTERED = AssetQuery()


def json_body(model: BaseModel) -> bytes:
    return model.__pydantic_serializer__.to_json(model, by_alias=True)


def summary_body(view: PortfolioView) -> bytes:
    return json_body(view.summary)


def assets_body(view: PortfolioView, query: AssetQuery = _UNFILTERED) -> bytes:
    return json_body(AssetList(assets=query.apply(view.assets)))


def warm_bodies(view: PortfolioView) -> dict[tuple[CacheKind, str], bytes]:
    """What the next read most likely asks for: the summary and the unfiltered asset list."""
    return {
        (CacheKind.PORTFOLIO, ""): summary_body(view),
        (CacheKind.ASSETS, _UNFILTERED.filter_key()): assets_body(view),
    }
