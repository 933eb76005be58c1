"""The cursor signing key is read from Secrets Manager (moto's server over HTTP), never from the
environment, and a rotated key takes effect without a deploy."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable

import boto3
import pytest
from portfolio.settings import Settings

from tests.integration.api.conftest import Call, buy, sell


@pytest.fixture
def key_secret(api_settings: Settings, function_environment: Callable[..., Settings]) -> str:
    secrets = boto3.client("secretsmanager", region_name=api_settings.aws_region)
    arn = secrets.create_secret(Name=f"cursor-key-{uuid.uuid4().hex}", SecretString="first-generated-key")["ARN"]
    function_environment(
        STAGE="prod",
        CURSOR_SIGNING_KEY_SECRET_ID=arn,
        # Read afresh on every use here, so the rotation below shows at once (300 s by default).
        SECRETS_MAX_AGE_SECONDS="0",
        DYNAMODB_READ_TIMEOUT_S="30",
    )
    return arn


def test_given_the_key_in_a_secret_when_paging_then_cursors_work_and_the_environment_never_holds_the_key(
    call: Call, user_id: str, key_secret: str
) -> None:
    # Given
    path = f"/portfolios/{user_id}/transactions"
    call("POST", path, sub=user_id, body={"transactions": [buy("b-1", "1"), sell("s-1", "0.5")]})

    # When
    first = call("GET", path, sub=user_id, query={"limit": "1"})
    second = call("GET", path, sub=user_id, query={"limit": "1", "cursor": first.json["nextCursor"]})

    # Then
    assert [t["id"] for t in first.json["transactions"] + second.json["transactions"]] == ["s-1", "b-1"]
    assert "first-generated-key" not in "".join(os.environ.values())
    assert "CURSOR_SIGNING_KEY" not in os.environ


def test_given_a_rotated_key_when_cursors_of_either_key_come_back_then_both_page_and_a_forged_one_is_refused(
    call: Call, user_id: str, key_secret: str, api_settings: Settings
) -> None:
    # Given a cursor signed with the first key
    path = f"/portfolios/{user_id}/transactions"
    call("POST", path, sub=user_id, body={"transactions": [buy("b-1", "1"), sell("s-1", "0.5")]})
    old_cursor = call("GET", path, sub=user_id, query={"limit": "1"}).json["nextCursor"]

    # When the secret is rotated (no deploy, no restart)
    secrets = boto3.client("secretsmanager", region_name=api_settings.aws_region)
    secrets.put_secret_value(SecretId=key_secret, SecretString="second-generated-key")

    # Then the cursor of before the rotation still pages (the previous key verifies), new cursors are
    # signed with the new key, and one signed with neither is refused
    assert (
        call("GET", path, sub=user_id, query={"limit": "1", "cursor": old_cursor}).json["transactions"][0]["id"]
        == "b-1"
    )
    fresh = call("GET", path, sub=user_id, query={"limit": "1", "type": "sell"}).json["nextCursor"]
    assert fresh is None or call("GET", path, sub=user_id, query={"limit": "1", "cursor": fresh}).status == 200
    forged = old_cursor[: old_cursor.rindex(".") + 1] + "A" * 43
    refused = call("GET", path, sub=user_id, query={"limit": "1", "cursor": forged})
    assert refused.status == 400
    assert refused.error["code"] == "invalid_input"
