"""WebSocketAuthorizerFunction: the WebSocket API's $connect REQUEST authorizer.

Browsers cannot set headers on a WebSocket, so the token comes in the `token` query parameter. It
is verified as the HTTP API's JWT authorizer verifies the Authorization header (signature against
the issuer's JWKS, expiry, issuer, audience) and its `sub` must be a user id the HTTP API accepts.
Allowed: an IAM policy for this route and context {"userId": sub}, which API Gateway hands every
later event of the connection. A token that fails is refused with 401 ("Unauthorized"), a valid
token whose subject is no user id with 403 (Deny). The token is never logged.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from portfolio import wiring
from portfolio.api.schemas import is_user_id
from portfolio.observability import logger, metrics, tracer
from portfolio.services.ports import InvalidTokenError

TOKEN_PARAMETER = "token"  # noqa: S105 - the query parameter's name
UNAUTHORIZED = "Unauthorized"


class Unauthorized(Exception):
    """An authorizer that fails with the message "Unauthorized" makes API Gateway answer 401."""

    def __init__(self) -> None:
        super().__init__(UNAUTHORIZED)


def policy(principal: str, effect: str, method_arn: str, context: dict[str, str] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": method_arn}],
        },
    }
    if context:
        answer["context"] = context
    return answer


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    token = (event.get("queryStringParameters") or {}).get(TOKEN_PARAMETER)
    if not isinstance(token, str) or not token:
        raise Unauthorized
    try:
        subject = wiring.token_verifier().subject(token)
    except InvalidTokenError as error:
        logger.info("connection refused: token not valid", extra={"reason": str(error)})
        metrics.add_metric(name="ConnectionsRefused", unit="Count", value=1)
        raise Unauthorized from None
    method_arn = str(event.get("methodArn", ""))
    if not is_user_id(subject):
        logger.info("connection refused: the token's subject is not a valid user id")
        metrics.add_metric(name="ConnectionsRefused", unit="Count", value=1)
        return policy("invalid-subject", "Deny", method_arn)
    return policy(subject, "Allow", method_arn, {"userId": subject})


# The event carries the token: it is never logged (log_event stays False).
@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return authorize(event)
