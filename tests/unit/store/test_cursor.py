"""Signed cursors: a position comes back only for the listing it was issued for."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from portfolio.adapters.cursor import MAX_CURSOR_LENGTH, CursorCodec, InvalidCursorError
from portfolio.domain.errors import InvalidInputError

POSITION = {"sk": "TX#t-1", "txSort": "2024-05-01T12:00:00.000000Z#t-1"}
SCOPE = '["alice", "ethereum", null, null, null, null]'


def test_given_a_cursor_when_decoded_for_the_same_scope_then_the_position_comes_back():
    codec = CursorCodec("key")

    assert codec.decode(codec.encode(POSITION, scope=SCOPE), scope=SCOPE) == POSITION


@given(scope=st.text(max_size=60), other=st.text(max_size=60))
def test_given_a_cursor_when_decoded_for_another_scope_then_it_is_rejected(scope, other):
    codec = CursorCodec("key")
    cursor = codec.encode(POSITION, scope=scope)

    if other == scope:
        assert codec.decode(cursor, scope=other) == POSITION
    else:
        with pytest.raises(InvalidCursorError):
            codec.decode(cursor, scope=other)


def test_given_a_payload_rewritten_by_the_client_when_decoded_then_it_is_rejected():
    codec = CursorCodec("key")
    version, _, signature = codec.encode(POSITION, scope=SCOPE).split(".")
    forged = {"sk": "TX#someone-elses", "txSort": "9999"}
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()

    with pytest.raises(InvalidCursorError):
        codec.decode(f"{version}.{forged_payload}.{signature}", scope=SCOPE)


def test_given_a_cursor_of_another_key_when_decoded_then_it_is_rejected():
    cursor = CursorCodec("old-key").encode(POSITION, scope=SCOPE)

    with pytest.raises(InvalidCursorError):
        CursorCodec("new-key").decode(cursor, scope=SCOPE)


@pytest.mark.parametrize("garbage", ["", "v1", "v1..", "v2.e30.abc", "not a cursor", "v1.%%%.%%%", "x" * 5000])
def test_given_garbage_when_decoded_then_it_is_an_invalid_input_on_the_cursor_field(garbage):
    with pytest.raises(InvalidInputError) as raised:
        CursorCodec("key").decode(garbage, scope=SCOPE)

    assert isinstance(raised.value, InvalidCursorError)
    assert raised.value.field == "cursor"


def test_given_a_typical_position_when_encoded_then_the_cursor_is_url_safe_and_short():
    cursor = CursorCodec("key").encode(POSITION, scope=SCOPE)

    assert len(cursor) < MAX_CURSOR_LENGTH
    assert all(character.isalnum() or character in "-_." for character in cursor)


def test_given_an_empty_key_when_a_codec_is_made_then_it_is_refused():
    with pytest.raises(ValueError):
        CursorCodec("")
