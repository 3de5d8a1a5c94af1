"""The Slack stand-in and signing helpers behave like Slack for slack_sdk."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web import WebClient
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fakes import slack_signing as ss
from tests.fakes.slack_api import FakeSlackAPI

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture
def fake():
    api = FakeSlackAPI()
    api.start()
    yield api
    api.stop()


@pytest.fixture
def client(fake):
    return AsyncWebClient(token="xoxb-test", base_url=fake.base_url)


async def test_base_url_shape(fake):
    assert fake.base_url.startswith("http://127.0.0.1:")
    assert fake.base_url.endswith("/api/")


async def test_auth_test(client, fake):
    r = await client.auth_test()
    assert r["user_id"] == "UBOT" and r["bot_id"] == "BBOT" and r["team_id"] == "T1"
    (call,) = fake.calls
    assert call.method == "auth.test"
    assert call.authorization == "Bearer xoxb-test"
    assert call.token == "xoxb-test"


async def test_post_message_recorded(client, fake):
    r1 = await client.chat_postMessage(channel="C1", text="hello", thread_ts="1700000000.000001")
    r2 = await client.chat_postMessage(channel="C1", text="again", blocks=[{"type": "divider"}])
    assert r1["ok"] and r1["channel"] == "C1"
    assert r1["message"]["thread_ts"] == "1700000000.000001"
    assert float(r2["ts"]) > float(r1["ts"])
    assert r1["ts"] == "1700000000.000100"
    calls = fake.wait_for("chat.postMessage", 2, timeout=2)
    assert calls[0].params == {"channel": "C1", "text": "hello", "thread_ts": "1700000000.000001"}
    assert calls[0].content_type.startswith("application/json")
    assert calls[1].params["blocks"] == [{"type": "divider"}]
    assert [p["text"] for p in fake.posts()] == ["hello", "again"]
    fake.clear()
    assert fake.calls == [] and fake.posts() == []


async def test_other_methods(client, fake):
    fake.users["U9"] = {"real_name": "Dr. Nine"}
    u = await client.users_info(user="U9")
    assert u["user"]["real_name"] == "Dr. Nine" and u["user"]["profile"]["real_name"] == "Dr. Nine"
    assert (await client.users_info(user="U2"))["user"]["real_name"]
    dm = await client.conversations_open(users="U2")
    assert dm["channel"]["id"].startswith("D") and dm["channel"]["id"] == fake.dm_channel_for("U2")
    info = await client.conversations_info(channel=dm["channel"]["id"])
    assert info["channel"]["is_im"] and info["channel"]["user"] == "U2"
    ch = await client.conversations_info(channel="C1")
    assert ch["channel"]["is_channel"] and not ch["channel"]["is_im"]
    upd = await client.chat_update(channel="C1", ts="1700000000.000100", text="edited")
    assert upd["ts"] == "1700000000.000100" and upd["text"] == "edited"
    eph = await client.chat_postEphemeral(channel="C1", user="U1", text="only you")
    assert eph["message_ts"]
    link = await client.chat_getPermalink(channel="C1", message_ts="1700000000.000100")
    assert link["permalink"].endswith("/archives/C1/p1700000000000100")
    view = await client.views_open(trigger_id="t1", view={"type": "modal", "title": {"type": "plain_text", "text": "x"}})
    assert view["view"]["id"].startswith("V")
    other = await client.api_call("reactions.add", params={"channel": "C1", "name": "eyes", "timestamp": "1.2"})
    assert other["ok"]
    methods = [c.method for c in fake.calls]
    assert methods == [
        "users.info", "users.info", "conversations.open", "conversations.info", "conversations.info",
        "chat.update", "chat.postEphemeral", "chat.getPermalink", "views.open", "reactions.add",
    ]
    # GET methods carry params in the query string; form methods in the body
    assert fake.calls[0].http_method == "GET" and fake.calls[0].params["user"] == "U9"
    assert fake.calls[2].content_type.startswith("application/x-www-form-urlencoded")
    assert fake.calls[-1].params == {"channel": "C1", "name": "eyes", "timestamp": "1.2"}


async def test_slack_style_errors(client, fake):
    with pytest.raises(SlackApiError) as ei:
        await client.chat_postMessage(channel="", text="x")
    assert ei.value.response["error"] == "channel_not_found"
    anon = AsyncWebClient(base_url=fake.base_url)
    with pytest.raises(SlackApiError) as ei:
        await anon.auth_test()
    assert ei.value.response["error"] == "not_authed"
    fake.set_response("chat.postMessage", lambda p: {"ok": False, "error": "is_archived"})
    with pytest.raises(SlackApiError) as ei:
        await client.chat_postMessage(channel="C1", text="x")
    assert ei.value.response["error"] == "is_archived"


async def test_rate_limit_429(client, fake):
    fake.fail_next("chat.postMessage", 429, retry_after=7)
    with pytest.raises(SlackApiError) as ei:
        await client.chat_postMessage(channel="C1", text="hi")
    resp = ei.value.response
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "7"
    assert resp["error"] == "ratelimited"
    ok = await client.chat_postMessage(channel="C1", text="hi")  # only the next call failed
    assert ok["ok"]
    calls = fake.wait_for("chat.postMessage", 2, timeout=2)
    assert [c.status for c in calls] == [429, 200]
    assert calls[0].injected and not calls[0].ok
    assert len(fake.posts()) == 1


async def test_server_errors_html_and_empty(client, fake):
    fake.fail_next("chat.postMessage", 503, times=2)
    fake.fail_next("users.info", 500, body="")
    for _ in range(2):
        with pytest.raises(SlackApiError) as ei:
            await client.chat_postMessage(channel="C1", text="hi")
        assert ei.value.response.status_code == 503
    with pytest.raises(SlackApiError) as ei:
        await client.users_info(user="U1")
    assert ei.value.response.status_code == 500
    assert (await client.chat_postMessage(channel="C1", text="hi"))["ok"]


async def test_delay_causes_client_timeout(fake):
    fake.set_delay("chat.postMessage", 1.5)
    slow = AsyncWebClient(token="xoxb-test", base_url=fake.base_url, timeout=0.3)
    slow.retry_handlers = []
    t0 = time.monotonic()
    with pytest.raises(Exception):
        await slow.chat_postMessage(channel="C1", text="slow")
    assert time.monotonic() - t0 < 1.4
    # the request still arrived and is answered later
    calls = await fake.wait_for_async("chat.postMessage", 1, timeout=5)
    assert calls[0].params["text"] == "slow"
    fake.set_delay("chat.postMessage", 0)


async def test_response_url(fake):
    url = fake.response_url("cmd1")
    r = await AsyncWebhookClient(url).send(text="answer", response_type="ephemeral")
    assert r.status_code == 200
    (call,) = await fake.wait_for_async("response_url", 1, timeout=2)
    assert call.name == "cmd1" and call.params["text"] == "answer"
    assert fake.responses("cmd1") == [{"text": "answer", "response_type": "ephemeral"}]
    assert fake.responses("other") == []


def test_sync_client_and_threads(fake):
    """The server lives in its own thread: blocking clients (like a subprocess) work too."""
    client = WebClient(token="xoxb-sync", base_url=fake.base_url)
    errors = []

    def post(i):
        try:
            client.chat_postMessage(channel="C2", text=f"m{i}")
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    calls = fake.wait_for("chat.postMessage", 10, timeout=5, predicate=lambda c: c.params["channel"] == "C2")
    assert len({c.response["ts"] for c in calls}) == 10
    assert all(c.token == "xoxb-sync" for c in calls)


# --------------------------------------------------------------------------- signing


def test_sign_matches_slack_sdk_verifier():
    body = ss.encode_json(ss.event_callback(ss.app_mention("is 75% enough?")))
    headers = ss.sign(body, SECRET)
    v = SignatureVerifier(SECRET)
    assert v.is_valid_request(body, headers)
    assert v.is_valid_request(body.decode(), headers)
    assert not SignatureVerifier("other-secret").is_valid_request(body, headers)
    assert not v.is_valid_request(body + b" ", headers)
    stale = ss.sign(body, SECRET, timestamp=time.time() - 600)
    assert not v.is_valid_request(body, stale)  # > 5 minutes old
    retry = ss.sign(body, SECRET, retry_num=1)
    assert retry["X-Slack-Retry-Num"] == "1" and retry["X-Slack-Retry-Reason"] == "http_timeout"
    assert v.is_valid_request(body, retry)
    form = ss.slash_command_form("score 80", "U1", "C1")
    assert v.is_valid_request(form, ss.sign(form, SECRET))


def test_payload_builders():
    m = ss.app_mention("hello", thread_ts="1.000001")
    assert m["type"] == "app_mention" and m["text"] == "<@UBOT> hello" and m["ts"] == m["event_ts"]
    assert m["thread_ts"] == "1.000001" and "channel_type" not in m
    env = ss.event_callback(m)
    assert env["type"] == "event_callback" and env["event"] is m and env["event_id"].startswith("Ev")
    assert env["event_id"] != ss.event_callback(m)["event_id"]
    assert ss.event_callback(m, event_id="Ev1")["event_id"] == "Ev1"
    dm = ss.dm_message("hi", "U2")
    assert dm["channel_type"] == "im" and dm["channel"] == "D1" and dm["user"] == "U2" and "subtype" not in dm
    tm = ss.thread_message("more", "U2", "C5", thread_ts=m["ts"])
    assert tm["thread_ts"] == m["ts"] and tm["channel_type"] == "channel"
    tss = [ss.dm_message("x", "U1")["ts"] for _ in range(50)]
    assert len(set(tss)) == 50 and tss == sorted(tss, key=float)
    bm = ss.bot_message("answer", channel="C1")
    assert bm["subtype"] == "bot_message" and bm["bot_id"] == "BBOT"
    assert "subtype" not in ss.bot_message("x", subtype=None)
    ch = ss.message_changed("new", "U1", "C1", message_ts="5.000001")
    assert ch["subtype"] == "message_changed" and ch["message"]["text"] == "new" and ch["message"]["ts"] == "5.000001"
    de = ss.message_deleted("5.000001", "C1")
    assert de["subtype"] == "message_deleted" and de["deleted_ts"] == "5.000001"
    form = urllib.parse.parse_qs(ss.slash_command_form("hi there", "U1", "C1", response_url="http://x/r").decode())
    assert form["command"] == ["/qopi"] and form["text"] == ["hi there"] and form["response_url"] == ["http://x/r"]
    action = urllib.parse.parse_qs(ss.block_action_form("claim", "QCP-0001", "U7", "C9", "1.000002").decode())
    payload = json.loads(action["payload"][0])
    assert payload["type"] == "block_actions" and payload["actions"][0]["action_id"] == "claim"
    assert payload["actions"][0]["value"] == "QCP-0001" and payload["user"]["id"] == "U7"
    assert payload["container"]["message_ts"] == "1.000002" and payload["channel"]["id"] == "C9"
    assert ss.url_verification("abc") == {"token": ss.VERIFICATION_TOKEN, "challenge": "abc", "type": "url_verification"}


async def _echo_server():
    """A tiny receiver that checks signatures with slack_sdk, to exercise post_signed."""
    seen = []

    async def handle(request):
        body = await request.read()
        ok = SignatureVerifier(SECRET).is_valid_request(body, dict(request.headers))
        seen.append((dict(request.headers), body))
        return web.Response(status=200 if ok else 401, text="ok" if ok else "bad signature")

    app = web.Application()
    app.router.add_post("/slack/events", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events", seen


async def test_post_signed_async_and_sync():
    runner, url, seen = await _echo_server()
    try:
        body = ss.event_callback(ss.dm_message("hello", "U1"))
        assert await ss.post_signed_async(url, body, SECRET) == (200, "ok")
        assert seen[-1][0]["Content-Type"] == "application/json"
        assert json.loads(seen[-1][1]) == body
        status, _ = await ss.post_signed_async(url, body, "wrong-secret")
        assert status == 401
        status, _ = await ss.post_signed_async(url, body, SECRET, timestamp=time.time() - 3600)
        assert status == 401
        status, _ = await ss.post_signed_async(url, body, SECRET, retry_num=2, retry_reason="http_error")
        assert status == 200 and seen[-1][0]["X-Slack-Retry-Num"] == "2"
        form = ss.slash_command_form("x", "U1", "C1")
        async with aiohttp.ClientSession() as s:
            assert (await ss.post_signed_async(url, form, SECRET, session=s))[0] == 200
        assert seen[-1][0]["Content-Type"] == "application/x-www-form-urlencoded"
        # the blocking variant, from a worker thread so this loop keeps serving
        import asyncio

        res = await asyncio.to_thread(ss.post_signed, url, form, SECRET, "application/x-www-form-urlencoded")
        assert res == (200, "ok")
        res = await asyncio.to_thread(
            ss.post_signed, url, form, SECRET, None, {"X-Slack-Signature": "v0=forged"}
        )
        assert res == (401, "bad signature")
    finally:
        await runner.cleanup()
