"""Opaque, signed page cursors.

A cursor carries where the previous page stopped. It is signed with HMAC-SHA256 over that
position *and* a scope (the user id and the filters of the listing), so a client can neither
forge a position, nor replay one user's cursor for another user, nor reuse it with other filters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator

from portfolio.domain.errors import InvalidInputError

CURSOR_VERSION = "v1"
MAX_CURSOR_LENGTH = 1024


class InvalidCursorError(InvalidInputError):
    """The cursor was not issued by us for this very listing (user and filters)."""

    def __init__(self, message: str = "the cursor is invalid or belongs to another listing") -> None:
        super().__init__(message, field="cursor")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# The key itself, or where to read it each time (a secret, which may be rotated meanwhile).
SigningKey = str | bytes | Callable[[], str | bytes]


def _as_bytes(key: str | bytes) -> bytes:
    key = key.encode() if isinstance(key, str) else key
    if not key:
        raise ValueError("the cursor signing key must not be empty")
    return key


class CursorCodec:
    """Encodes a position (a small str -> str map) into a signed cursor, and back.

    Cursors are signed with the current key; `previous_key` (the key before the last rotation, or
    None) still verifies, so listings paged across a rotation, and pages cached before it, go on."""

    def __init__(
        self, signing_key: SigningKey, *, previous_key: Callable[[], str | bytes | None] | None = None
    ) -> None:
        if callable(signing_key):
            self._key = lambda: _as_bytes(signing_key())
        else:
            static = _as_bytes(signing_key)
            self._key = lambda: static
        self._previous_key = previous_key

    def encode(self, position: dict[str, str], *, scope: str) -> str:
        payload = _b64encode(json.dumps(position, separators=(",", ":"), sort_keys=True).encode())
        return f"{CURSOR_VERSION}.{payload}.{self._sign(payload, scope, self._key())}"

    def decode(self, cursor: str, *, scope: str) -> dict[str, str]:
        """The position, if the cursor is ours and was issued for `scope`; else InvalidCursorError."""
        if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_LENGTH:
            raise InvalidCursorError()
        version, _, rest = cursor.partition(".")
        payload, _, signature = rest.partition(".")
        if version != CURSOR_VERSION or not payload or not signature:
            raise InvalidCursorError()
        if not any(hmac.compare_digest(signature, self._sign(payload, scope, key)) for key in self._verifying_keys()):
            raise InvalidCursorError()
        try:
            position = json.loads(_b64decode(payload))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidCursorError() from None
        if not isinstance(position, dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in position.items()
        ):
            raise InvalidCursorError()
        return position

    def _verifying_keys(self) -> Iterator[bytes]:
        yield self._key()
        previous = self._previous_key() if self._previous_key is not None else None
        if previous:
            yield _as_bytes(previous)

    def _sign(self, payload: str, scope: str, key: bytes) -> str:
        # The scope is hashed first so that no choice of user id or filter can shift the boundary
        # between scope and payload in the signed message.
        scope_digest = hashlib.sha256(scope.encode()).hexdigest()
        message = f"{CURSOR_VERSION}\n{scope_digest}\n{payload}".encode()
        return _b64encode(hmac.new(key, message, hashlib.sha256).digest())
