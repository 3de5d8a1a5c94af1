"""Forged, stale and malformed requests: exact status codes, nothing done, server still up."""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest

from tests.fakes import slack_signing as ss
from tests.fakes.slack_api import FakeSlackAPI
from tests.slack_harness import (  # noqa: F401  (fixtures)
    SECRET, Stand, env, fake, settle, stand,
)

QUESTION = "Is 80% enough to pass?"


async def _assert_nothing_happened(stand: Stand, fake: FakeSlackAPI) -> None:
    await settle(0.1)  # nothing was stored, so nothing can be processed later either
    assert fake.calls == []
    assert await stand.service.store.inbox_counts() == {}


async def test_forged_signature_gets_401_and_does_nothing(stand: Stand, fake: FakeSlackAPI) -> None:
    envelope = ss.event_callback(ss.app_mention(QUESTION))
    forged = ss.sign(ss.encode_json(envelope), "not-the-secret")
    status, _ = await stand.send(envelope, extra_headers={"X-Slack-Signature": forged["X-Slack-Signature"]})
    assert status == 401
    status, _ = await ss.post_signed_async(stand.events_url, envelope, "not-the-secret", session=stand.http)
    assert status == 401
    await _assert_nothing_happened(stand, fake)


async def test_body_changed_after_signing_gets_401(stand: Stand, fake: FakeSlackAPI) -> None:
    envelope = ss.event_callback(ss.app_mention(QUESTION))
    headers = ss.sign(ss.encode_json(envelope), SECRET)
    envelope["event"]["text"] = "<@UBOT> something else"
    status, _ = await stand.send(envelope, extra_headers=headers)
    assert status == 401
    await _assert_nothing_happened(stand, fake)


@pytest.mark.parametrize("age", [301, 600, -400])
async def test_stale_or_future_timestamp_gets_401(stand: Stand, fake: FakeSlackAPI, age: int) -> None:
    status, _ = await stand.send(ss.event_callback(ss.app_mention(QUESTION)), timestamp=time.time() - age)
    assert status == 401
    await _assert_nothing_happened(stand, fake)


@pytest.mark.parametrize("headers", [
    {"X-Slack-Signature": ""},
    {"X-Slack-Request-Timestamp": "yesterday"},
    {"X-Slack-Request-Timestamp": ""},
    {"X-Slack-Signature": "v1=abc"},
])
async def test_missing_or_garbled_signature_headers_get_401(stand: Stand, fake: FakeSlackAPI, headers: dict) -> None:
    status, _ = await stand.send(ss.event_callback(ss.app_mention(QUESTION)), extra_headers=headers)
    assert status == 401
    await _assert_nothing_happened(stand, fake)


async def test_unsigned_request_gets_401(stand: Stand, fake: FakeSlackAPI) -> None:
    async with stand.http.post(stand.events_url, json=ss.event_callback(ss.app_mention(QUESTION))) as resp:
        assert resp.status == 401
    await _assert_nothing_happened(stand, fake)


MALFORMED: list[tuple[bytes, str]] = [
    (b"{not json", "application/json"),
    (b"[1, 2, 3]", "application/json"),
    (b'"just a string"', "application/json"),
    (json.dumps({"type": "event_callback", "event_id": "Ev1"}).encode(), "application/json"),  # no event
    (json.dumps({"type": "event_callback", "event": {"type": "app_mention", "text": "hi"}}).encode(), "application/json"),
    (json.dumps({"type": "event_callback", "event_id": "Ev2", "event": "app_mention"}).encode(), "application/json"),
    (json.dumps({"type": "event_callback", "event_id": "Ev3",
                 "event": {"type": "app_mention", "text": "<@UBOT> hi", "ts": "1.2"}}).encode(), "application/json"),
    (json.dumps({"type": "url_verification"}).encode(), "application/json"),
    (b"\xff\xfe\x00garbage", "application/json"),
    (b"payload=%7Bbroken", "application/x-www-form-urlencoded"),
    (urllib.parse.urlencode({"payload": json.dumps({"type": "block_actions", "actions": []})}).encode(),
     "application/x-www-form-urlencoded"),
    (urllib.parse.urlencode({"command": "/qopi", "text": "hi"}).encode(), "application/x-www-form-urlencoded"),
    (b"hello=world", "application/x-www-form-urlencoded"),
    (b"<xml/>", "text/xml"),
    (b"", "application/json"),
]


@pytest.mark.parametrize("body,content_type", MALFORMED)
async def test_signed_malformed_bodies_get_4xx_and_the_server_stays_up(
        stand: Stand, fake: FakeSlackAPI, body: bytes, content_type: str) -> None:
    status, _ = await stand.send(body, content_type=content_type)
    assert 400 <= status < 500
    code, health = await stand.healthz()
    assert code == 200 and health["ok"]
    await _assert_nothing_happened(stand, fake)


async def test_oversized_body_is_refused_with_4xx(stand: Stand, fake: FakeSlackAPI) -> None:
    body = ss.encode_json({"type": "event_callback", "event_id": "EvBig", "event": {"type": "message", "text": "x" * 2_000_000}})
    status, _ = await stand.send(body)
    assert 400 <= status < 500
    assert (await stand.healthz())[0] == 200
    await _assert_nothing_happened(stand, fake)
