"""Secrets read from Secrets Manager when first needed, never from the environment.

A function's environment is readable by anyone allowed lambda:GetFunctionConfiguration, so it holds
only a secret's ARN. The value is fetched through Powertools parameters on first use (after a
SnapStart restore too: no secret is in a snapshot) and kept in memory for `max_age_s`, so a rotated
value reaches running containers within that time, without a deploy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SECRET_MAX_AGE_S = 300


class SecretValue:
    """A secret's current value, read through a short cache."""

    def __init__(
        self, secret_id: str, *, max_age_s: int = SECRET_MAX_AGE_S, read_secret: Callable[..., Any] | None = None
    ) -> None:
        self._secret_id = secret_id
        self._max_age_s = max_age_s
        self._read_secret = read_secret

    def __call__(self) -> str:
        read = self._read_secret
        if read is None:
            from aws_lambda_powertools.utilities import parameters

            read = parameters.get_secret
        return _text(self._secret_id, read(self._secret_id, max_age=self._max_age_s))

    def previous(self) -> str | None:
        """The value before the last rotation (Secrets Manager's AWSPREVIOUS stage); None if never rotated."""
        from aws_lambda_powertools.utilities import parameters

        global _previous_values
        if _previous_values is None:
            # A provider of its own: Powertools caches by secret name, whatever the version stage.
            _previous_values = parameters.SecretsProvider()
        try:
            value = _previous_values.get(self._secret_id, max_age=self._max_age_s, VersionStage="AWSPREVIOUS")
        except parameters.exceptions.GetParameterError:
            return None
        return _text(self._secret_id, value)

    def __repr__(self) -> str:
        return f"SecretValue({self._secret_id!r})"


_previous_values: Any = None


def _text(secret_id: str, value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode()
    if not isinstance(value, str) or not value:
        raise ValueError(f"secret {secret_id} holds no text value")
    return value


def forget_secrets() -> None:
    """Drop every cached secret (after a SnapStart restore, each environment reads its own)."""
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    if _previous_values is not None:
        _previous_values.clear_cache()
