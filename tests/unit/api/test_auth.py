"""Who may read and write which portfolio, from the claims API Gateway verified."""

from __future__ import annotations

import pytest
from portfolio.api.auth import authorize, caller_from_event
from portfolio.api.errors import Forbidden, Unauthorized

from local_stack.http_events import http_event

ADMIN = "portfolio/admin"


def test_given_an_event_without_an_authorizer_when_reading_the_caller_then_there_is_none() -> None:
    event = http_event("GET", "/portfolios/user-alice", sub=None)

    assert caller_from_event(event) is None


def test_given_scopes_in_the_scope_claim_when_reading_the_caller_then_each_space_separated_scope_counts() -> None:
    event = http_event("GET", "/portfolios/user-alice", sub="ops")
    event["requestContext"]["authorizer"]["jwt"]["claims"]["scope"] = "openid portfolio/admin"
    event["requestContext"]["authorizer"]["jwt"]["scopes"] = None

    caller = caller_from_event(event)

    assert caller is not None and caller.scopes == {"openid", ADMIN}


def test_given_an_array_claim_as_http_api_flattens_it_when_reading_the_caller_then_the_brackets_are_dropped() -> None:
    event = http_event("GET", "/portfolios/user-alice", sub="ops")
    event["requestContext"]["authorizer"]["jwt"]["claims"]["scope"] = "[portfolio/admin openid]"

    caller = caller_from_event(event)

    assert caller is not None and ADMIN in caller.scopes


def test_given_no_claims_when_authorizing_then_unauthorized() -> None:
    with pytest.raises(Unauthorized):
        authorize(None, "user-alice", write=False, admin_scope=ADMIN)


@pytest.mark.parametrize("write", [False, True])
def test_given_the_owner_when_authorizing_then_reads_and_writes_are_allowed(write: bool) -> None:
    caller = caller_from_event(http_event("GET", "/", sub="user-alice"))

    assert authorize(caller, "user-alice", write=write, admin_scope=ADMIN) == caller


@pytest.mark.parametrize("write", [False, True])
def test_given_another_user_when_authorizing_then_forbidden(write: bool) -> None:
    caller = caller_from_event(http_event("GET", "/", sub="user-mallory"))

    with pytest.raises(Forbidden):
        authorize(caller, "user-alice", write=write, admin_scope=ADMIN)


def test_given_an_admin_when_reading_another_portfolio_then_allowed_but_writing_it_is_forbidden() -> None:
    caller = caller_from_event(http_event("GET", "/", sub="ops", scopes=[ADMIN]))

    assert authorize(caller, "user-alice", write=False, admin_scope=ADMIN) == caller
    with pytest.raises(Forbidden):
        authorize(caller, "user-alice", write=True, admin_scope=ADMIN)


def test_given_a_sub_that_only_differs_in_case_when_authorizing_then_it_is_another_user() -> None:
    caller = caller_from_event(http_event("GET", "/", sub="User-Alice"))

    with pytest.raises(Forbidden):
        authorize(caller, "user-alice", write=False, admin_scope=ADMIN)


@pytest.mark.parametrize("sub", ["user-alice\n", "user alice", "a%41", "-user-alice", "x" * 129])
@pytest.mark.parametrize("scopes", [(), (ADMIN,)], ids=["user", "admin"])
def test_given_a_sub_that_is_not_a_valid_user_id_when_authorizing_even_its_own_id_then_forbidden(
    sub: str, scopes: tuple[str, ...]
) -> None:
    # Given a verified token whose sub no route would accept as a userId (a final newline included)
    caller = caller_from_event(http_event("GET", "/", sub=sub, scopes=scopes))

    # When it asks for the portfolio of exactly that id, or of a valid one
    # Then it is refused either way
    for user_id in (sub, "user-alice"):
        with pytest.raises(Forbidden, match="not a valid user id"):
            authorize(caller, user_id, write=False, admin_scope=ADMIN)
