"""Fixtures for the portfolio store: a store on the test's own table, and a record of every DynamoDB call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from portfolio.adapters.dynamodb.store import PortfolioStore
from portfolio.adapters.dynamodb_client import make_dynamodb_client
from portfolio.settings import Settings

from tests.integration.store.tables import create_fresh_tables


@dataclass
class CallLog:
    """Every DynamoDB operation a client sends, with its API parameters and parsed answer."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    answers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def before_call(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls.append((model.name, params))

    def after_call(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        self.answers.append((model.name, parsed))

    def operations(self) -> list[str]:
        return [name for name, _ in self.calls]

    def count(self, operation: str) -> int:
        return self.operations().count(operation)

    def clear(self) -> None:
        self.calls.clear()
        self.answers.clear()


@pytest.fixture(scope="module")
def table_names(moto_endpoint: str) -> dict[str, str]:
    """One set of tables per module (creating them costs more than most tests here): every test
    writes under its own user id, so tests of a module never see each other's items."""
    return create_fresh_tables(moto_endpoint)


@pytest.fixture
def store_client(settings: Settings) -> Any:
    # moto on a busy machine can take seconds for a 100-item transaction; a read timeout here would
    # make botocore send the write again, which is not what these tests are about.
    return make_dynamodb_client(settings.model_copy(update={"dynamodb_read_timeout_s": 30.0}))


@pytest.fixture
def call_log(store_client: Any) -> CallLog:
    log = CallLog()
    store_client.meta.events.register("before-parameter-build.dynamodb", log.before_call)
    store_client.meta.events.register("after-call.dynamodb", log.after_call)
    return log


@pytest.fixture
def make_store(store_client: Any, settings: Settings) -> Callable[..., PortfolioStore]:
    def build(client: Any = None, *, table_name: str | None = None, **options: Any) -> PortfolioStore:
        arguments: dict[str, Any] = {
            "cursor_signing_key": settings.cursor_signing_key.get_secret_value(),
            "shards": settings.user_index_shards,
        } | options
        return PortfolioStore(client or store_client, table_name or settings.table_name, **arguments)

    return build


@pytest.fixture
def store_on_fresh_table(make_store: Callable[..., PortfolioStore], moto_endpoint: str) -> PortfolioStore:
    """For large transactions: moto copies the whole table once per item of a TransactWriteItems."""
    return make_store(table_name=create_fresh_tables(moto_endpoint)["PortfolioTable"])


@pytest.fixture
def store(make_store: Callable[..., PortfolioStore]) -> PortfolioStore:
    return make_store()
