"""A local stand-in for Slack's Web API, for tests.

``FakeSlackAPI`` is an aiohttp server on 127.0.0.1 (free port) that runs in a
background thread with its own event loop, so the same instance serves
in-process async code (``AsyncWebClient(base_url=fake.base_url)``) and bot
subprocesses (``SLACK_API_URL=fake.base_url``).

How slack_sdk talks to it (checked against slack_sdk 3.x):

* every call goes to ``base_url + method`` (``base_url`` must end in ``/``);
* ``chat.postMessage``, ``chat.update``, ``chat.postEphemeral``, ``views.open``
  ... send a JSON body (``application/json;charset=utf-8``);
* most other methods send ``application/x-www-form-urlencoded`` (bools become
  "1"/"0", lists are comma-joined strings by the caller);
* ``conversations.info``, ``users.info`` and ``chat.getPermalink`` are **GET**
  requests with the parameters in the query string;
* the token travels in ``Authorization: Bearer xoxb-...``.

All of these are parsed into ``Call.params`` (query + form/JSON/multipart merged).

Failures: ``fail_next("chat.postMessage", 429, retry_after=3)`` answers the next
call with HTTP 429, ``Retry-After: 3`` and ``{"ok": false, "error": "ratelimited"}``;
``fail_next(m, 503)`` answers with an HTML page, ``body=""`` with an empty body,
``body={...}`` with that JSON (also usable with status 200 for Slack-style
``{"ok": false, "error": "channel_not_found"}``). ``set_delay(m, seconds)`` makes
answers slow. Use ``"*"`` as method to match every method.

Waiting: ``wait_for`` blocks the calling thread (fine for subprocess tests, and
for in-process code only if that code runs in another thread/loop); from a
coroutine sharing the loop with the code under test use ``await
fake.wait_for_async(...)`` instead.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Optional, Union

from aiohttp import web

__all__ = ["Call", "FakeSlackAPI", "BOT_USER_ID", "BOT_ID", "TEAM_ID"]

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T1"
APP_ID = "A1"

ResponseSpec = Union[dict, Callable[[Dict[str, Any]], dict]]


@dataclass
class Call:
    """One request received by the fake."""

    method: str  # e.g. "chat.postMessage", or "response_url"
    params: Dict[str, Any]  # query + body (JSON / form / multipart) merged
    authorization: Optional[str]  # raw Authorization header
    headers: Dict[str, str]
    time: float  # time.time() at arrival
    http_method: str = "POST"
    content_type: str = ""
    raw_body: bytes = b""
    name: Optional[str] = None  # response_url name (response_url calls only)
    status: Optional[int] = None  # HTTP status answered; None while still pending
    response: Optional[Any] = None  # JSON answered (None for HTML/empty bodies)
    injected: bool = False  # answered by fail_next

    @property
    def token(self) -> Optional[str]:
        auth = self.authorization or ""
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        tok = self.params.get("token")
        return tok if isinstance(tok, str) else None

    @property
    def ok(self) -> bool:
        """HTTP 200 and a JSON body with ok=true."""
        return self.status == 200 and isinstance(self.response, dict) and bool(self.response.get("ok"))

    @property
    def done(self) -> bool:
        return self.status is not None

    # dict-style access for convenience: call["params"]["text"]
    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


@dataclass
class _Failure:
    status: int
    retry_after: Optional[Union[int, float, str]]
    body: Any
    remaining: int


_DEFAULT_HTML = (
    "<!DOCTYPE html><html><head><title>{status} {reason}</title></head>"
    "<body><h1>{status} {reason}</h1><p>The server encountered a temporary error.</p></body></html>"
)


class FakeSlackAPI:
    """Slack Web API stand-in. ``start()`` returns the base URL ending in ``/api/``."""

    def __init__(self, *, valid_tokens: Optional[List[str]] = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port: Optional[int] = None
        # If set, any other token gets {"ok": false, "error": "invalid_auth"}.
        self.valid_tokens = list(valid_tokens) if valid_tokens else None
        # Per-id overrides merged into users.info / conversations.info answers.
        self.users: Dict[str, Dict[str, Any]] = {}
        self.channels: Dict[str, Dict[str, Any]] = {}

        self._lock = threading.RLock()
        self._calls: List[Call] = []
        self._failures: Dict[str, Deque[_Failure]] = collections.defaultdict(collections.deque)
        self._delays: Dict[str, float] = {}
        self._responses: Dict[str, ResponseSpec] = {}
        self._ts_counter = itertools.count(1)
        # Conversation history (channel -> messages), for conversations.history/replies and
        # users.conversations: what people wrote (add_message) and what the bot posted.
        self._history: Dict[str, List[Dict[str, Any]]] = collections.defaultdict(list)
        self._id_counter = itertools.count(1)

        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._runner: Optional[web.AppRunner] = None
        self._started = threading.Event()
        self._start_error: Optional[BaseException] = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("FakeSlackAPI is not started")
        return f"http://{self.host}:{self.port}/api/"

    @property
    def root_url(self) -> str:
        if self.port is None:
            raise RuntimeError("FakeSlackAPI is not started")
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        if self._thread is not None:
            return self.base_url
        self._started.clear()
        self._start_error = None
        self._thread = threading.Thread(target=self._run, name="FakeSlackAPI", daemon=True)
        self._thread.start()
        if not self._started.wait(15):
            raise RuntimeError("FakeSlackAPI did not start within 15 s")
        if self._start_error is not None:
            self._thread.join(5)
            self._thread = None
            raise RuntimeError(f"FakeSlackAPI failed to start: {self._start_error!r}") from self._start_error
        return self.base_url

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def _shutdown() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        try:
            fut = asyncio.run_coroutine_threadsafe(_shutdown(), loop)
            fut.result(10)
        except Exception:  # pragma: no cover - best effort
            pass
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._thread = None
        self._loop = None
        self._runner = None

    def __enter__(self) -> "FakeSlackAPI":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._setup())
        except BaseException as e:  # noqa: BLE001
            self._start_error = e
            self._started.set()
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _setup(self) -> None:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_route("*", "/response/{name:.*}", self._handle_response_url)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port or 0)
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]

    # ------------------------------------------------------------------ test controls
    def fail_next(
        self,
        method: str,
        status: int,
        times: int = 1,
        retry_after: Optional[Union[int, float, str]] = None,
        body: Any = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with ``status``.

        ``body=None`` picks a default: 429 -> JSON ratelimited, other >=400 ->
        an HTML error page, 2xx -> ``{"ok": false, "error": "fatal_error"}``.
        ``body=""`` -> empty body; dict/list -> JSON; str -> HTML text; bytes -> raw.
        """
        with self._lock:
            self._failures[method].append(_Failure(status, retry_after, body, times))

    def set_delay(self, method: str, seconds: float) -> None:
        """Delay every answer of ``method`` (``"*"`` for all); 0 removes the delay."""
        with self._lock:
            if seconds:
                self._delays[method] = float(seconds)
            else:
                self._delays.pop(method, None)

    def set_response(self, method: str, response: Optional[ResponseSpec]) -> None:
        """Override the JSON answered for ``method``: a dict, or ``callable(params) -> dict``."""
        with self._lock:
            if response is None:
                self._responses.pop(method, None)
            else:
                self._responses[method] = response

    def add_message(self, channel: str, user: str, text: str, ts: str, thread_ts: Optional[str] = None) -> Dict[str, Any]:
        """Put a message in a conversation's history without delivering any event for it
        (what Slack holds for a bot whose web process was down)."""
        msg: Dict[str, Any] = {"type": "message", "user": user, "text": text, "ts": ts, "team": TEAM_ID}
        if thread_ts:
            msg["thread_ts"] = thread_ts
        with self._lock:
            self._history[channel].append(msg)
        return msg

    def history(self, channel: str) -> List[Dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self._history.get(channel, [])]

    def clear(self) -> None:
        """Forget recorded calls, pending failures, delays and response overrides."""
        with self._lock:
            self._calls.clear()
            self._failures.clear()
            self._delays.clear()
            self._responses.clear()

    def response_url(self, name: str = "default") -> str:
        """A URL on this server; JSON POSTed there is recorded as method "response_url"."""
        return f"{self.root_url}/response/{urllib.parse.quote(name, safe='')}"

    @staticmethod
    def dm_channel_for(user: str) -> str:
        """The DM channel id conversations.open returns for ``user``."""
        return "D" + user[1:] if user[:1] in ("U", "W") else "D" + user

    # ------------------------------------------------------------------ inspection
    @property
    def calls(self) -> List[Call]:
        """A snapshot copy of all recorded calls, oldest first."""
        with self._lock:
            return list(self._calls)

    def calls_for(self, method: str, *, completed_only: bool = False) -> List[Call]:
        with self._lock:
            return [c for c in self._calls if c.method == method and (c.done or not completed_only)]

    def posts(self) -> List[Dict[str, Any]]:
        """Params of chat.postMessage calls that were answered ok."""
        return [c.params for c in self.calls_for("chat.postMessage") if c.ok]

    def responses(self, name: Optional[str] = None) -> List[Dict[str, Any]]:
        """JSON bodies POSTed to response URLs (optionally one name)."""
        return [c.params for c in self.calls_for("response_url") if name is None or c.name == name]

    def _matching(
        self,
        method: str,
        predicate: Optional[Callable[[Call], bool]],
        include_pending: bool,
    ) -> List[Call]:
        out = []
        for c in self.calls_for(method):
            if not include_pending and not c.done:
                continue
            if predicate is not None and not predicate(c):
                continue
            out.append(c)
        return out

    def _timeout_message(self, method: str, count: int, got: int, timeout: float) -> str:
        summary = ", ".join(f"{c.method}:{c.status}" for c in self.calls) or "none"
        return f"expected {count} {method} call(s) within {timeout}s, got {got}; all calls: [{summary}]"

    def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 10.0,
        predicate: Optional[Callable[[Call], bool]] = None,
        *,
        include_pending: bool = False,
    ) -> List[Call]:
        """Block until ``count`` answered calls of ``method`` (matching ``predicate``) exist.

        Returns the matching calls; raises AssertionError on timeout. Do not use
        from a coroutine on the loop the code under test runs on: use wait_for_async.
        """
        deadline = time.monotonic() + timeout
        while True:
            got = self._matching(method, predicate, include_pending)
            if len(got) >= count:
                return got
            if time.monotonic() >= deadline:
                raise AssertionError(self._timeout_message(method, count, len(got), timeout))
            time.sleep(0.02)

    async def wait_for_async(
        self,
        method: str,
        count: int = 1,
        timeout: float = 10.0,
        predicate: Optional[Callable[[Call], bool]] = None,
        *,
        include_pending: bool = False,
    ) -> List[Call]:
        """Like wait_for, but yields to the running event loop while polling."""
        deadline = time.monotonic() + timeout
        while True:
            got = self._matching(method, predicate, include_pending)
            if len(got) >= count:
                return got
            if time.monotonic() >= deadline:
                raise AssertionError(self._timeout_message(method, count, len(got), timeout))
            await asyncio.sleep(0.02)

    # ------------------------------------------------------------------ internals
    def _next_ts(self) -> str:
        n = next(self._ts_counter) * 100
        return f"{1700000000 + n // 1_000_000}.{n % 1_000_000:06d}"

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._id_counter):08d}"

    @staticmethod
    async def _parse(request: web.Request) -> tuple[Dict[str, Any], bytes]:
        params: Dict[str, Any] = {k: v for k, v in request.query.items()}
        ctype = request.content_type or ""
        if ctype.startswith("multipart/"):
            form = await request.post()
            for k, v in form.items():
                if isinstance(v, web.FileField):
                    data = v.file.read()
                    params[k] = {"filename": v.filename, "size": len(data), "content_type": v.content_type}
                else:
                    params[k] = v
            return params, b""
        raw = await request.read()
        if not raw:
            return params, raw
        text = raw.decode("utf-8", errors="replace")
        if ctype == "application/json" or (not ctype and text.lstrip().startswith(("{", "["))):
            try:
                body = json.loads(text)
            except ValueError:
                params["_unparsed_body"] = text
            else:
                if isinstance(body, dict):
                    params.update(body)
                else:
                    params["_json"] = body
        else:
            for k, vs in urllib.parse.parse_qs(text, keep_blank_values=True).items():
                params[k] = vs[0] if len(vs) == 1 else vs
        return params, raw

    def _record(self, request: web.Request, method: str, params: Dict[str, Any], raw: bytes, name: Optional[str] = None) -> Call:
        call = Call(
            method=method,
            params=params,
            authorization=request.headers.get("Authorization"),
            headers=dict(request.headers),
            time=time.time(),
            http_method=request.method,
            content_type=request.headers.get("Content-Type", ""),
            raw_body=raw,
            name=name,
        )
        with self._lock:
            self._calls.append(call)
        return call

    def _take_failure(self, method: str) -> Optional[_Failure]:
        with self._lock:
            for key in (method, "*"):
                q = self._failures.get(key)
                if q:
                    f = q[0]
                    f.remaining -= 1
                    if f.remaining <= 0:
                        q.popleft()
                    return f
        return None

    def _delay_for(self, method: str) -> float:
        with self._lock:
            return self._delays.get(method, self._delays.get("*", 0.0))

    def _finish(self, call: Call, status: int, payload: Any) -> None:
        with self._lock:
            call.response = payload
            call.status = status

    def _failure_response(self, call: Call, f: _Failure) -> web.Response:
        headers = {}
        if f.retry_after is not None:
            headers["Retry-After"] = str(f.retry_after)
        body = f.body
        if body is None:
            if f.status == 429:
                body = {"ok": False, "error": "ratelimited"}
            elif f.status >= 400:
                from http import HTTPStatus

                try:
                    reason = HTTPStatus(f.status).phrase
                except ValueError:
                    reason = "Error"
                body = _DEFAULT_HTML.format(status=f.status, reason=reason)
            else:
                body = {"ok": False, "error": "fatal_error"}
        with self._lock:
            call.injected = True
        if isinstance(body, (dict, list)):
            self._finish(call, f.status, body)
            return web.json_response(body, status=f.status, headers=headers)
        self._finish(call, f.status, None)
        if isinstance(body, bytes):
            return web.Response(body=body, status=f.status, headers=headers)
        if body == "":
            return web.Response(status=f.status, headers=headers)
        return web.Response(text=body, status=f.status, headers=headers, content_type="text/html")

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params, raw = await self._parse(request)
        call = self._record(request, method, params, raw)
        delay = self._delay_for(method)
        if delay:
            await asyncio.sleep(delay)
        failure = self._take_failure(method)
        if failure is not None:
            return self._failure_response(call, failure)
        payload = self._answer(method, params, call.token)
        self._finish(call, 200, payload)
        return web.json_response(payload)

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        name = urllib.parse.unquote(request.match_info["name"])
        params, raw = await self._parse(request)
        call = self._record(request, "response_url", params, raw, name=name)
        delay = self._delay_for("response_url")
        if delay:
            await asyncio.sleep(delay)
        failure = self._take_failure("response_url")
        if failure is not None:
            return self._failure_response(call, failure)
        self._finish(call, 200, {"ok": True})
        # Slack answers response_url posts with a plain "ok"
        return web.Response(text="ok", content_type="text/html")

    # ------------------------------------------------------------------ method bodies
    def _answer(self, method: str, p: Dict[str, Any], token: Optional[str]) -> dict:
        if not token:
            return {"ok": False, "error": "not_authed"}
        if self.valid_tokens is not None and token not in self.valid_tokens:
            return {"ok": False, "error": "invalid_auth"}
        with self._lock:
            override = self._responses.get(method)
        if override is not None:
            return override(p) if callable(override) else dict(override)
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return {"ok": True}
        return handler(p)

    def _m_auth_test(self, p: Dict[str, Any]) -> dict:
        return {
            "ok": True,
            "url": "https://qopi-test.slack.com/",
            "team": "QOPI Test",
            "user": "qopi-bot",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _message(self, p: Dict[str, Any], ts: str) -> dict:
        msg: Dict[str, Any] = {
            "type": "message",
            "text": p.get("text", ""),
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM_ID,
            "ts": ts,
        }
        for key in ("blocks", "attachments", "metadata"):
            if key in p:
                msg[key] = p[key]
        if p.get("thread_ts"):
            msg["thread_ts"] = p["thread_ts"]
        return msg

    @staticmethod
    def _check_message(p: Dict[str, Any]) -> Optional[dict]:
        if not p.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not (p.get("text") or p.get("blocks") or p.get("attachments")):
            return {"ok": False, "error": "no_text"}
        return None

    def _m_chat_postMessage(self, p: Dict[str, Any]) -> dict:
        err = self._check_message(p)
        if err:
            return err
        ts = self._next_ts()
        message = self._message(p, ts)
        with self._lock:
            self._history[p["channel"]].append(dict(message))
        return {"ok": True, "channel": p["channel"], "ts": ts, "message": message}

    def _m_chat_update(self, p: Dict[str, Any]) -> dict:
        if not p.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not p.get("ts"):
            return {"ok": False, "error": "message_not_found"}
        msg = self._message(p, p["ts"])
        return {"ok": True, "channel": p["channel"], "ts": p["ts"], "text": p.get("text", ""), "message": msg}

    def _m_chat_postEphemeral(self, p: Dict[str, Any]) -> dict:
        err = self._check_message(p)
        if err:
            return err
        if not p.get("user"):
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "message_ts": self._next_ts()}

    def _m_chat_delete(self, p: Dict[str, Any]) -> dict:
        return {"ok": True, "channel": p.get("channel"), "ts": p.get("ts")}

    def _m_chat_getPermalink(self, p: Dict[str, Any]) -> dict:
        channel, ts = p.get("channel"), p.get("message_ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not ts:
            return {"ok": False, "error": "message_not_found"}
        return {
            "ok": True,
            "channel": channel,
            "permalink": f"https://qopi-test.slack.com/archives/{channel}/p{str(ts).replace('.', '')}",
        }

    def _m_conversations_info(self, p: Dict[str, Any]) -> dict:
        cid = p.get("channel")
        if not cid:
            return {"ok": False, "error": "channel_not_found"}
        is_im = cid.startswith("D")
        ch: Dict[str, Any] = {
            "id": cid,
            "created": 1700000000,
            "is_im": is_im,
            "is_channel": cid.startswith("C"),
            "is_group": cid.startswith("G"),
            "is_private": not cid.startswith("C"),
            "is_archived": False,
            "is_member": True,
            "is_ext_shared": False,
        }
        if is_im:
            ch["user"] = "U" + cid[1:]
        else:
            ch["name"] = cid.lower()
        ch.update(self.channels.get(cid, {}))
        return {"ok": True, "channel": ch}

    def _m_conversations_open(self, p: Dict[str, Any]) -> dict:
        users = p.get("users") or ""
        if isinstance(users, list):
            users = ",".join(users)
        users = [u.strip() for u in str(users).split(",") if u.strip()]
        if p.get("channel"):
            return {"ok": True, "no_op": True, "already_open": True, "channel": {"id": p["channel"]}}
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        if len(users) == 1:
            cid = self.dm_channel_for(users[0])
        else:
            cid = "G" + "".join(sorted(u[1:] for u in users))
        return {"ok": True, "no_op": False, "already_open": False, "channel": {"id": cid}}

    def _m_users_info(self, p: Dict[str, Any]) -> dict:
        uid = p.get("user")
        if not uid:
            return {"ok": False, "error": "user_not_found"}
        is_bot = uid == BOT_USER_ID
        real = "QOPI Bot" if is_bot else f"Test User {uid}"
        user: Dict[str, Any] = {
            "id": uid,
            "team_id": TEAM_ID,
            "name": uid.lower(),
            "deleted": False,
            "real_name": real,
            "tz": "America/New_York",
            "tz_offset": -18000,
            "is_bot": is_bot,
            "is_admin": False,
            "profile": {
                "real_name": real,
                "display_name": real,
                "email": None if is_bot else f"{uid.lower()}@practice.example",
            },
        }
        override = self.users.get(uid, {})
        if "real_name" in override:
            user["profile"]["real_name"] = override["real_name"]
        user.update(override)
        return {"ok": True, "user": user}

    @staticmethod
    def _float(value: Any, default: float) -> float:
        try:
            return float(value)
        except (TypeError, ValueError):
            return default

    def _m_users_conversations(self, p: Dict[str, Any]) -> dict:
        """Every conversation with history counts as one the bot is a member of."""
        with self._lock:
            ids = sorted(self._history)
        chans = [{"id": c, "is_im": c.startswith("D"), "is_channel": c.startswith("C"),
                  "is_private": not c.startswith("C"), "is_member": True} for c in ids]
        return {"ok": True, "channels": chans, "response_metadata": {"next_cursor": ""}}

    def _m_conversations_history(self, p: Dict[str, Any]) -> dict:
        """Top-level messages (thread parents included), newest first, with reply counts."""
        channel = p.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        oldest = self._float(p.get("oldest"), 0.0)
        limit = int(self._float(p.get("limit"), 100))
        with self._lock:
            msgs = [dict(m) for m in self._history.get(channel, [])]
        tops = []
        for m in msgs:
            if m.get("thread_ts") and m["thread_ts"] != m["ts"]:
                continue
            replies = [r for r in msgs if r.get("thread_ts") == m["ts"] and r["ts"] != m["ts"]]
            if replies:
                m["thread_ts"] = m["ts"]
                m["reply_count"] = len(replies)
                m["latest_reply"] = max(r["ts"] for r in replies)
            if float(m["ts"]) > oldest or float(m.get("latest_reply", "0")) > oldest:
                tops.append(m)
        tops.sort(key=lambda m: float(m["ts"]), reverse=True)
        return {"ok": True, "messages": tops[:limit], "has_more": len(tops) > limit}

    def _m_conversations_replies(self, p: Dict[str, Any]) -> dict:
        """The parent first, then its replies after `oldest`, oldest first."""
        channel, ts = p.get("channel"), p.get("ts")
        if not channel or not ts:
            return {"ok": False, "error": "thread_not_found"}
        oldest = self._float(p.get("oldest"), 0.0)
        with self._lock:
            msgs = [dict(m) for m in self._history.get(channel, [])]
        parent = [m for m in msgs if m["ts"] == ts]
        replies = sorted((m for m in msgs if m.get("thread_ts") == ts and m["ts"] != ts and float(m["ts"]) > oldest),
                         key=lambda m: float(m["ts"]))
        return {"ok": True, "messages": parent + replies, "has_more": False}

    def _m_views_open(self, p: Dict[str, Any]) -> dict:
        if not p.get("trigger_id"):
            return {"ok": False, "error": "invalid_arguments"}
        view = p.get("view")
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError:
                view = {}
        view = dict(view or {})
        view.setdefault("id", self._next_id("V"))
        view.setdefault("team_id", TEAM_ID)
        view.setdefault("app_id", APP_ID)
        view.setdefault("bot_id", BOT_ID)
        return {"ok": True, "view": view}
