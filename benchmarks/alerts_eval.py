"""The cost of evaluating one user's alert rules during a refresh, against valuing that user's holdings.

    .venv/bin/python -m benchmarks.alerts_eval

One user with 50 holdings and 5 rules (2 price rules, value_change over 1h, 24h and 7d), as the price
updater evaluates them: `AlertEvaluation.evaluate` on a round `prepare` loaded beforehand (rules,
asset prices, the windows' start prices), in the steady state where no rule crosses, so nothing is
written (a store that raises on a write proves it). The baseline is what the refresh already does for
that user, `value_portfolio` of the same holdings and quotes. Both sides run in-process, alternating
rounds; the headline is the median over rounds of the evaluation's p50, and the ratio the median of
the rounds' (evaluation p50 / valuation p50). `prepare` is timed too, for a message of 100 such users
(what its CPU adds per user); its I/O, one BatchGetItem of rules and one of past prices per message,
is not (in-memory ports here).
"""

from __future__ import annotations

import json
import statistics
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from portfolio.domain.accounting import Ledger, replay
from portfolio.domain.alerts import AlertRule, PriceCondition, ValueChangeCondition
from portfolio.domain.prices import PriceQuote, PriceSource
from portfolio.domain.tokens import TokenId
from portfolio.domain.transactions import Transaction
from portfolio.domain.valuation import value_portfolio
from portfolio.services.alert_evaluation import AlertEvaluation, AlertRound
from portfolio.services.ports import StoredAlerts

from benchmarks.timing import compare, percentile_us, time_calls

WINDOW = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
HOLDINGS = 50
USERS_PER_MESSAGE = 100


def _tokens() -> list[TokenId]:
    return [TokenId("ethereum", f"0x{index + 1:040x}") for index in range(HOLDINGS)]


def _ledger(tokens: list[TokenId]) -> Ledger:
    return replay(
        Transaction(
            id=f"buy-{index}",
            type="buy",
            chain=token.chain,
            token_address=token.address,
            amount=f"{index + 1}.25",
            price_usd=f"{index + 10}.5",
            timestamp=WINDOW - timedelta(days=30, minutes=index),
        )
        for index, token in enumerate(tokens)
    )


def _rules() -> tuple[AlertRule, ...]:
    conditions = [
        PriceCondition(kind="price", asset="ETH", above="1000000"),
        PriceCondition(kind="price", asset="SOL", below="0.0001"),
        *(
            ValueChangeCondition(kind="value_change", threshold_percent="5", window=window)
            for window in ("1h", "24h", "7d")
        ),
    ]
    return tuple(
        AlertRule(alert_id=f"rule{index}", created_at=WINDOW, condition=condition)
        for index, condition in enumerate(conditions)
    )


class _Rules:
    def __init__(self, user_ids: list[str]) -> None:
        self._stored = {user_id: StoredAlerts(user_id, _rules(), 1) for user_id in user_ids}

    def load_many(self, user_ids):
        return {user_id: self._stored[user_id] for user_id in user_ids if user_id in self._stored}

    def load_rules(self, user_id: str) -> StoredAlerts:
        return self._stored[user_id]

    def save(self, stored, rules):
        raise AssertionError("no rule crosses in the steady state: nothing may be written")


class _PastPrices:
    """Every coin 1 % below its price now, at every window's start: no value_change rule reaches 5 %."""

    def __init__(self, now: dict[str, Decimal]) -> None:
        self._then = {coin: price * Decimal("0.99") for coin, price in now.items()}

    def prices_at(self, coin_ids, at, resolutions):
        return {coin: self._then[coin] for coin in coin_ids if coin in self._then}


class _Prices:
    def get_prices(self, tokens, *, deadline=None):
        return {
            str(token): PriceQuote(token=str(token), price=Decimal("150"), timestamp=WINDOW, source=PriceSource.REDIS)
            for token in tokens
        }


def run(repetitions: int = 7, calls_per_repetition: int = 300) -> dict:
    tokens = _tokens()
    ledger = _ledger(tokens)
    quotes = {
        token.key: PriceQuote(
            token=token.key, price=Decimal(f"{index + 2}.125"), timestamp=WINDOW, source=PriceSource.REDIS
        )
        for index, token in enumerate(tokens)
    }
    users = [f"bench-{index}" for index in range(USERS_PER_MESSAGE)]
    evaluation = AlertEvaluation(
        _Rules(users), _Prices(), _PastPrices({token.price_coin_id: quotes[token.key].price for token in tokens})
    )
    ledgers = dict.fromkeys(users, ledger)

    def prepare() -> AlertRound | None:
        return evaluation.prepare(users, WINDOW, ledgers, dict(quotes))

    alerts = prepare()
    assert alerts is not None and len(alerts.stored) == USERS_PER_MESSAGE

    def evaluate() -> None:
        evaluation.evaluate(alerts, users[0], ledger, quotes)

    def value() -> object:
        return value_portfolio(users[0], ledger, quotes)

    evaluate()
    if alerts.fired or alerts.users_evaluated != 1:
        raise RuntimeError("the steady state must evaluate the user without firing")
    timed = compare(evaluate, value, repetitions=repetitions, calls=calls_per_repetition, warmup=50)
    prepare_rounds = [statistics.median(time_calls(prepare, 10)) / USERS_PER_MESSAGE / 1000 for _ in range(5)]

    return {
        "benchmark": "alerts_eval",
        "alerts_eval_us_per_user": percentile_us(timed.subject, 0.50),
        "alerts_eval_p99_us": percentile_us(timed.subject, 0.99),
        "ratio_to_valuation": timed.ratio,
        "valuation_us_per_user": percentile_us(timed.baseline, 0.50),
        "prepare_us_per_user": round(statistics.median(prepare_rounds), 1),
        "rules_per_user": len(_rules()),
        "holdings": HOLDINGS,
        "repetitions": repetitions,
        "calls_per_repetition": calls_per_repetition,
    }


def main() -> None:
    result = run()
    print(
        f"alert rules ({result['rules_per_user']}) evaluated per user: p50 {result['alerts_eval_us_per_user']} us, "
        f"{result['ratio_to_valuation']}x valuing the user's {result['holdings']} holdings "
        f"({result['valuation_us_per_user']} us); prepare {result['prepare_us_per_user']} us per user"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
