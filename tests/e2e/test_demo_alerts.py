"""DEMO=1 gives each demo user a sample alert rule, through the API like any client's, once."""

from __future__ import annotations

import json

from local_stack.demo import DEMO_ALERTS, DEMO_TRANSACTIONS, load_demo_alerts
from local_stack.http_events import IncomingRequest
from local_stack.jwt_auth import JwtAuthorizer
from tests.e2e.test_demo_data import SECRET, gateway  # noqa: F401 - the gateway fixture of the demo tests


def test_given_the_demo_when_loaded_twice_then_each_user_has_its_one_sample_rule(gateway):  # noqa: F811
    authorizer = JwtAuthorizer(SECRET)

    first = load_demo_alerts(gateway.dispatch, authorizer)
    again = load_demo_alerts(gateway.dispatch, authorizer)

    assert set(DEMO_ALERTS) == set(DEMO_TRANSACTIONS)
    assert [(result.user_id, result.status, result.problem) for result in first] == [
        (user_id, 201, None) for user_id in DEMO_ALERTS
    ]
    assert [(result.status, result.alert_id) for result in again] == [(200, result.alert_id) for result in first]
    for user_id, rule in DEMO_ALERTS.items():
        response = gateway.dispatch(
            IncomingRequest(
                "GET",
                f"/portfolios/{user_id}/alerts",
                headers=[("Authorization", f"Bearer {authorizer.issue(user_id)}")],
            )
        )
        (listed,) = json.loads(response.body)["alerts"]
        assert {key: listed[key] for key in rule} == rule
        assert listed["status"] == "armed"
