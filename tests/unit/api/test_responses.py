"""ETags and conditional reads."""

from __future__ import annotations

from portfolio.api.responses import etag_of, json_body_response


def test_given_the_same_bytes_when_tagging_then_the_tag_is_the_same_and_differs_for_other_bytes() -> None:
    assert etag_of(b'{"a":"1"}') == etag_of(b'{"a":"1"}')
    assert etag_of(b'{"a":"1"}') != etag_of(b'{"a":"2"}')


def test_given_a_matching_if_none_match_when_answering_then_304_without_a_body() -> None:
    body = b'{"totalValueUsd":"10"}'

    response = json_body_response(body, if_none_match=f'"other", {etag_of(body)}')

    assert response.status_code == 304
    assert response.body == ""
    assert response.headers["ETag"] == etag_of(body)


def test_given_a_stale_if_none_match_when_answering_then_the_body_is_sent_as_is() -> None:
    body = b'{"totalValueUsd":"10.50"}'

    response = json_body_response(body, if_none_match='"stale"')

    assert response.status_code == 200
    assert response.body == body.decode()
    assert response.headers["Cache-Control"] == "private, no-cache"


def test_given_a_weak_form_of_the_tag_when_answering_then_it_still_matches() -> None:
    body = b"{}"

    assert json_body_response(body, if_none_match=f"W/{etag_of(body)}").status_code == 304
