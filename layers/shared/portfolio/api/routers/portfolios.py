"""Reads of a portfolio: summary, assets, performance. Served from the cache when it holds them."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from portfolio.api.dependencies import portfolio_reader
from portfolio.api.openapi_responses import read_answers
from portfolio.api.routers.common import UserId, read_response
from portfolio.api.schemas import ChainSlug
from portfolio.domain.asset_query import AssetQuery, AssetSort, SortOrder
from portfolio.domain.money import DecimalStr
from portfolio.domain.transactions import Category
from portfolio.domain.views import AssetList, PerformanceView, Period, PortfolioSummary

router = Router()


@router.get(
    "/portfolios/<userId>",
    operation_id="getPortfolio",
    summary="Portfolio summary: value, cost basis, P&L, ROI and breakdowns",
    tags=["portfolio"],
    responses=read_answers(PortfolioSummary, "The portfolio summary"),
)
def get_portfolio(user_id: UserId) -> Response[Any]:
    return read_response(router, portfolio_reader().summary(user_id))


@router.get(
    "/portfolios/<userId>/assets",
    operation_id="listAssets",
    summary="Holdings, one line per token and chain, filtered and sorted",
    tags=["portfolio"],
    responses=read_answers(AssetList, "The matching holdings"),
)
def get_assets(
    user_id: UserId,
    chain: Annotated[ChainSlug | None, Query(max_length=40, description="DeFiLlama chain slug")] = None,
    category: Annotated[Category | None, Query()] = None,
    min_value_usd: Annotated[DecimalStr | None, Query(alias="minValueUsd", description="Decimal string")] = None,
    sort: Annotated[AssetSort, Query()] = AssetSort.VALUE,
    order: Annotated[SortOrder, Query()] = SortOrder.DESC,
) -> Response[Any]:
    query = AssetQuery(chain=chain, category=category, min_value_usd=min_value_usd, sort=sort, order=order)
    return read_response(router, portfolio_reader().assets(user_id, query))


@router.get(
    "/portfolios/<userId>/performance",
    operation_id="getPerformance",
    summary="Value over a period, and the change in value and in P&L",
    tags=["portfolio"],
    responses=read_answers(PerformanceView, "The performance over the period"),
)
def get_performance(user_id: UserId, period: Annotated[Period, Query()] = Period.MONTH) -> Response[Any]:
    return read_response(router, portfolio_reader().performance(user_id, period))
