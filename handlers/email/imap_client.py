"""Connecting to the help mailbox: TLS / STARTTLS / plain, password or XOAUTH2, and the few
IMAP commands the intake needs, over aioimaplib.

aioimaplib has no STARTTLS, so the upgrade is done here on its transport. Every command has
a deadline: a server that stops answering (a silently dead connection) raises instead of
hanging, and the intake reconnects. Nothing here logs; callers log ids and reasons only."""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
from pathlib import Path

import aioimaplib
from aioimaplib.aioimaplib import Command
from pydantic import BaseModel

from qopi_bot.settings import Settings

COMMAND_TIMEOUT = 30.0  # seconds; a 25 MB FETCH over a slow link still fits
CONNECT_TIMEOUT = 10.0  # greeting and login: a server that is still starting (or half gone) is retried soon

_CODE = re.compile(rb"\[(UIDVALIDITY|UIDNEXT) (\d+)\]")
_LIST = re.compile(rb'^\([^)]*\) (?:"((?:[^"\\]|\\.)*)"|NIL) ')
_FETCH_HEAD = re.compile(rb"UID (\d+)|INTERNALDATE \"([^\"]+)\"")


class ImapError(Exception):
    """The server refused something; the text is the server's own, never message content."""


class ImapConfigError(ImapError):
    """Settings or credentials are wrong; retried with a long backoff and a hint in the log."""


class Folder(BaseModel):
    name: str
    uidvalidity: int
    uidnext: int


class Fetched(BaseModel):
    uid: int
    raw: bytes
    internaldate: str = ""


def _ok(resp: aioimaplib.Response, what: str) -> aioimaplib.Response:
    if resp.result != "OK":
        text = b" ".join(x for x in resp.lines if isinstance(x, bytes))[-200:].decode("ascii", "replace")
        raise ImapError(f"{what} refused: {resp.result} {text}")
    return resp


def quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def oauth2_token(settings: Settings) -> str:
    """Read at every login, so an operator (or a cron job) refreshing the token file is
    picked up on the next reconnect without a restart."""
    if settings.imap_oauth2_token_file:
        try:
            return Path(settings.imap_oauth2_token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImapConfigError(f"QOPI_IMAP_OAUTH2_TOKEN_FILE unreadable: {type(exc).__name__}") from None
    return settings.imap_oauth2_token.strip()


class ImapConnection:
    """One logged-in session. `lost` is set when the server closes the connection."""

    def __init__(self, client: aioimaplib.IMAP4, lost: asyncio.Event) -> None:
        self.client = client
        self.lost = lost
        self.delimiter = "/"

    @classmethod
    async def open(cls, settings: Settings) -> ImapConnection:
        host, port, security = settings.imap_host, settings.imap_port, settings.imap_security
        lost = asyncio.Event()
        if security == "tls":
            client: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(host, port, timeout=COMMAND_TIMEOUT,
                                                            ssl_context=ssl.create_default_context())
        else:
            client = aioimaplib.IMAP4(host, port, timeout=COMMAND_TIMEOUT)
        client.protocol.conn_lost_cb = lambda _exc: lost.set()
        conn = cls(client, lost)
        try:
            await asyncio.wait_for(client.wait_hello_from_server(), CONNECT_TIMEOUT)
            if security == "starttls":
                await conn._starttls(host)
            await conn._login(settings)
            conn.delimiter = await conn._delimiter()
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _starttls(self, host: str) -> None:
        proto = self.client.protocol
        if "STARTTLS" not in proto.capabilities:
            # Never fall back to sending the password in clear text.
            raise ImapConfigError("QOPI_IMAP_SECURITY=starttls but the server does not offer STARTTLS")
        cmd = Command("STARTTLS", proto.new_tag(), loop=proto.loop)
        _ok(await asyncio.wait_for(proto.execute(cmd), COMMAND_TIMEOUT), "STARTTLS")
        loop = asyncio.get_running_loop()
        proto.transport = await loop.start_tls(proto.transport, proto, ssl.create_default_context(),
                                               server_hostname=host)
        await asyncio.wait_for(proto.capability(), COMMAND_TIMEOUT)  # capabilities may change after TLS

    async def _login(self, settings: Settings) -> None:
        user = settings.imap_user
        token = oauth2_token(settings)
        if token:
            resp = await asyncio.wait_for(self._xoauth2(user, token), CONNECT_TIMEOUT)
        elif settings.imap_password:
            resp = await self.client.login(user, settings.imap_password)
        else:
            raise ImapConfigError("set QOPI_IMAP_PASSWORD or QOPI_IMAP_OAUTH2_TOKEN(_FILE) for QOPI_IMAP_USER")
        if resp.result != "OK":
            raise ImapConfigError(f"login as QOPI_IMAP_USER refused ({'XOAUTH2' if token else 'password'}); "
                                  "check the credentials" + (" or refresh the token" if token else ""))

    async def _xoauth2(self, user: str, token: str) -> aioimaplib.Response:
        """AUTHENTICATE XOAUTH2 with the initial response (SASL-IR). A refused token is
        answered with a "+ <error>" challenge the client must acknowledge with an empty line
        before the server says NO; aioimaplib does not, and would wait forever."""
        proto = self.client.protocol
        sasl = base64.b64encode(f"user={user}\1auth=Bearer {token}\1\1".encode()).decode("ascii")
        cmd = Command("AUTHENTICATE", proto.new_tag(), "XOAUTH2", sasl, loop=proto.loop)
        task = asyncio.ensure_future(proto.execute(cmd, scrub=sasl))
        acknowledged = False
        while not task.done():
            await asyncio.wait({task}, timeout=0.05)
            if not acknowledged and any(isinstance(x, bytes) and x.startswith(b"+") for x in cmd.response.lines):
                proto.send("")
                acknowledged = True
        resp = task.result()
        if resp.result == "OK":
            proto.state = "AUTH"
        return resp

    async def _delimiter(self) -> str:
        resp = _ok(await self.client.list('""', '""'), "LIST")
        for line in resp.lines:
            m = _LIST.match(line) if isinstance(line, bytes) else None
            if m and m.group(1):
                return m.group(1).decode("ascii", "replace").replace("\\\\", "\\")
        return "/"

    def server_name(self, folder: str) -> str:
        """Settings spell folders with "/" (QOPI/Done); servers use their own separator."""
        return folder.replace("/", self.delimiter) if self.delimiter else folder

    @property
    def has_idle(self) -> bool:
        return self.client.has_capability("IDLE")

    async def select(self, folder: str) -> Folder:
        resp = await self.client.select(quote(self.server_name(folder)))
        if resp.result == "NO":
            raise ImapConfigError(f"QOPI_IMAP_FOLDER {folder!r} cannot be opened; check the folder name")
        _ok(resp, f"SELECT {folder}")
        codes = {k.decode(): int(v) for line in resp.lines if isinstance(line, bytes) for k, v in _CODE.findall(line)}
        if "UIDVALIDITY" not in codes:
            raise ImapError(f"SELECT {folder}: the server sent no UIDVALIDITY")
        return Folder(name=folder, uidvalidity=codes["UIDVALIDITY"], uidnext=codes.get("UIDNEXT", 0))

    async def ensure_folder(self, folder: str) -> None:
        name = quote(self.server_name(folder))
        if (await self.client.status(name, "(MESSAGES)")).result == "OK":
            return
        resp = await self.client.create(name)
        if resp.result != "OK" and (await self.client.status(name, "(MESSAGES)")).result != "OK":
            raise ImapConfigError(f"cannot create QOPI_IMAP_DONE_FOLDER {folder!r}: {_ok(resp, 'CREATE')}")
        await self.client.subscribe(name)  # so mail clients show it

    async def uids_from(self, first_uid: int) -> list[int]:
        resp = _ok(await self.client.uid_search(f"UID {max(first_uid, 1)}:*", charset=None), "UID SEARCH")
        found: list[int] = []
        for line in resp.lines:
            if isinstance(line, bytes) and line.startswith(b"SEARCH"):
                line = line[6:]
            if isinstance(line, bytes) and re.fullmatch(rb"[\d ]*", line.strip()):
                found += [int(x) for x in line.split()]
        # "n:*" always matches the newest message, even when its UID is below n.
        return sorted(u for u in set(found) if u >= first_uid)

    async def fetch(self, uid: int) -> Fetched | None:
        """The whole message, without setting \\Seen; None when it is gone (expunged)."""
        resp = _ok(await self.client.uid("fetch", str(uid), "(UID INTERNALDATE BODY.PEEK[])"), "UID FETCH")
        raw: bytes | None = None
        found_uid, date = None, ""
        for line in resp.lines:
            if isinstance(line, bytearray):
                raw = bytes(line)
            elif isinstance(line, bytes) and b"FETCH" in line:
                for u, d in _FETCH_HEAD.findall(line):
                    found_uid = int(u) if u else found_uid
                    date = d.decode() if d else date
        if raw is None or found_uid not in (None, uid):
            return None
        return Fetched(uid=uid, raw=raw, internaldate=date)

    async def move(self, uids: list[int], folder: str) -> None:
        uid_set = ",".join(str(u) for u in uids)
        target = quote(self.server_name(folder))
        if self.client.has_capability("MOVE"):
            _ok(await self.client.uid("move", uid_set, target), "UID MOVE")
            return
        # RFC 3501 fallback: copy, flag, expunge. A crash in between leaves a second copy
        # in the done folder, never a second answer (the inbox key is UIDVALIDITY + UID).
        _ok(await self.client.uid("copy", uid_set, target), "UID COPY")
        _ok(await self.client.uid("store", uid_set, "+FLAGS.SILENT", "(\\Deleted)"), "UID STORE")
        if self.client.has_capability("UIDPLUS"):
            _ok(await self.client.uid("expunge", uid_set), "UID EXPUNGE")
        else:
            _ok(await self.client.expunge(), "EXPUNGE")

    async def noop(self) -> None:
        _ok(await self.client.noop(), "NOOP")

    async def close(self) -> None:
        try:
            if not self.lost.is_set() and self.client.get_state() in ("AUTH", "SELECTED"):
                await asyncio.wait_for(self.client.logout(), 3)
        except Exception:
            pass  # going away anyway
        transport = self.client.protocol.transport
        if transport is not None:
            transport.close()
