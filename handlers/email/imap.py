"""IMAP intake: the help mailbox where it really lives (contract section 11).

When QOPI_IMAP_HOST is set the worker reads QOPI_IMAP_FOLDER instead of listening for SMTP.
For each new message, in this order:

  1. fetch it (BODY.PEEK: nothing on the server changes),
  2. store it in the durable inbox under "UIDVALIDITY + UID" -- the same inbox SMTP mail
     goes to, so threading, loop rules, staff relay and reply caps are the email channel's,
  3. only then move it to QOPI_IMAP_DONE_FOLDER (automated mail too: it is stored, moved,
     and the inbox processor ignores it).

A crash (kill -9) between 2 and 3 leaves the message in the folder; the next session stores
it again, the inbox says "already stored", and it is moved. A crash before 2 loses nothing
either: the message is still in the folder. So every message is answered once.

New mail is noticed by IDLE (re-issued every QOPI_IMAP_IDLE_SECONDS, at most 29 minutes per
RFC 2177; a server that does not answer the re-IDLE is a dead connection and is replaced),
or by polling every QOPI_IMAP_POLL_SECONDS on servers without IDLE. Any failure -- server
restart, dropped connection, database away -- ends the session; the next one starts after a
backoff (1 s doubling to 60 s) and begins with a full sweep, so nothing that arrived in
between is missed. Logs carry UIDs, sizes and reasons, never a body, subject or address."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable
from email.utils import parseaddr

from aioimaplib.aioimaplib import STOP_WAIT_SERVER_PUSH

from qopi_bot_handlers.email.imap_client import Fetched, Folder, ImapConfigError, ImapConnection
from qopi_bot_handlers.email.imap_history import Baseline, baseline_for, mailbox_key
from qopi_bot.batching import InboxGroupWriter
from qopi_bot.logs import get_logger
from qopi_bot.settings import Settings
from qopi_bot.store import Store

log = get_logger("qopi_bot_handlers.email.imap")

BATCH = 20  # messages stored before one MOVE; bounds what a crash can leave to re-read
MAX_BACKOFF = 60.0
_RETURN_PATH = re.compile(rb"^return-path:[ \t]*(.*)$", re.I | re.M)


def envelope_sender(raw: bytes) -> str:
    """The SMTP envelope sender, as the delivering server recorded it (Return-Path).

    "" for an empty return path (bounces: never answered). A mailbox without Return-Path
    (mail put there by APPEND) falls back to From, so such mail is not taken for a bounce."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    found = _RETURN_PATH.search(head)
    if found:
        value = found.group(1).decode("ascii", "replace").strip()
        return "" if value in ("<>", "") else parseaddr(value)[1]
    from_line = re.search(rb"^from:[ \t]*(.*(?:\r?\n[ \t].*)*)", head, re.I | re.M)
    return parseaddr(from_line.group(1).decode("utf-8", "replace"))[1] if from_line else ""


def inbox_key(mailbox: str, uidvalidity: int, uid: int) -> str:
    """The inbox dedupe key (RFC 5092 style): the same message re-read is stored once."""
    prefix = mailbox if len(mailbox) <= 300 else hashlib.sha256(mailbox.encode()).hexdigest()
    return f"imap:{prefix};UIDVALIDITY={uidvalidity};UID={uid}"


class ImapIntake:
    def __init__(self, settings: Settings, store: Store, *, stored: Callable[[], None], stop: asyncio.Event) -> None:
        self.settings = settings
        self.store = store
        self._stored = stored  # wakes the inbox loop
        self._writer = InboxGroupWriter(store, "email")
        self._stop = stop
        self._watching = False
        self.mailbox = mailbox_key(settings.imap_host, settings.imap_user, settings.imap_folder)
        # aioimaplib logs every line it receives at DEBUG: message bodies must never reach a log.
        logging.getLogger("aioimaplib").setLevel(logging.WARNING)
        logging.getLogger("aioimaplib.aioimaplib").setLevel(logging.WARNING)

    async def run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            self._watching = False
            try:
                await self._session()
                backoff = 1.0
            except ImapConfigError as exc:
                # Fixing settings or a token takes a person (or the token refresher): retry,
                # but not so often that the provider locks the account for failed logins.
                backoff = max(backoff, 5.0)
                log.error("email.imap_config", error=str(exc), retry_in=backoff)
                backoff_next = min(backoff * 2, MAX_BACKOFF)
            except Exception as exc:  # server restart, dropped connection, database away: retry
                if self._watching:
                    backoff = 1.0  # a session that worked: the backoff of earlier outages is over
                log.warning("email.imap_disconnected", error=type(exc).__name__, detail=str(exc)[:200],
                            retry_in=backoff)
                backoff_next = min(backoff * 2, MAX_BACKOFF)
            else:
                continue
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=backoff)
            except TimeoutError:
                pass
            backoff = backoff_next

    async def _session(self) -> None:
        conn = await ImapConnection.open(self.settings)
        try:
            await conn.ensure_folder(self.settings.imap_done_folder)
            folder = await conn.select(self.settings.imap_folder)
            self._history: set[int] = set()  # history UIDs seen this session (UIDVALIDITY changed)
            baseline = await baseline_for(self.store, self.mailbox, uidvalidity=folder.uidvalidity,
                                          uidnext=folder.uidnext, backfill=self.settings.imap_backfill)
            self._watching = True
            log.info("email.imap_watching", folder=self.settings.imap_folder, uidvalidity=folder.uidvalidity,
                     first_uid=baseline.first_uid, idle=conn.has_idle, security=self.settings.imap_security)
            while not self._stop.is_set():
                if await self._sweep(conn, folder, baseline):
                    # Mail that arrived during the sweep was announced (EXISTS) in the answers to
                    # our own FETCH and MOVE, and IDLE does not announce it again: look once more
                    # before waiting, or it would wait for the next mail or the IDLE renewal.
                    continue
                await self._wait_for_mail(conn)
        finally:
            await conn.close()

    async def _sweep(self, conn: ImapConnection, folder: Folder, baseline: Baseline) -> int:
        """Store and move everything new in the folder; returns how many were moved."""
        same = folder.uidvalidity == baseline.uidvalidity
        uids = [u for u in await conn.uids_from(baseline.first_uid if same else 1) if u not in self._history]
        moved = 0
        for start in range(0, len(uids), BATCH):
            # Each message is stored while the next is fetched (a group commit takes whatever
            # waits: a burst costs a few commits, not one per message), and the batch is moved
            # only once every one of its messages is stored.
            storing: list[asyncio.Task[None]] = []
            done: list[int] = []
            for uid in uids[start:start + BATCH]:
                if self._stop.is_set():
                    break
                message = await conn.fetch(uid)
                if message is None:
                    continue  # expunged meanwhile by someone else
                if not same and baseline.is_history(folder.uidvalidity, uid, message.internaldate):
                    self._history.add(uid)  # fetched once per session, not at every wake-up
                    continue
                storing.append(asyncio.ensure_future(self._store(folder, message)))
                done.append(uid)
            # Raises when the database is away: the messages stay in the folder and the session
            # is retried; none is ever moved unstored.
            failed = [r for r in await asyncio.gather(*storing, return_exceptions=True) if isinstance(r, BaseException)]
            if failed:
                raise failed[0]
            if done:
                await conn.move(done, self.settings.imap_done_folder)
                moved += len(done)
                log.info("email.imap_moved", count=len(done), first_uid=done[0], last_uid=done[-1])
        return moved

    async def _store(self, folder: Folder, message: Fetched) -> None:
        raw = message.raw
        item = await self._writer.put(
            inbox_key(self.mailbox, folder.uidvalidity, message.uid), raw,
            {"mail_from": envelope_sender(raw), "rcpt_tos": [self.settings.help_address], "size": len(raw),
             "imap_uid": message.uid, "imap_uidvalidity": folder.uidvalidity})
        if item is None:
            log.info("email.duplicate", imap_uid=message.uid, size=len(raw))  # stored before a crash or drop
            return
        log.info("email.received", inbox=item, imap_uid=message.uid, size=len(raw))
        self._stored()

    async def _wait_for_mail(self, conn: ImapConnection) -> None:
        """Return when the folder may have new mail, the IDLE is due for renewal, or on stop."""
        if not conn.has_idle:
            await self._sleep_or_stop(conn, self.settings.imap_poll_seconds)
            await conn.noop()
            return
        idle = await conn.client.idle_start(timeout=self.settings.imap_idle_seconds)
        try:
            while not self._stop.is_set():
                push = asyncio.ensure_future(conn.client.wait_server_push(timeout=self.settings.imap_idle_seconds + 30))
                stopping = asyncio.ensure_future(self._stop.wait())
                lost = asyncio.ensure_future(conn.lost.wait())
                finished, _ = await asyncio.wait({push, stopping, lost}, return_when=asyncio.FIRST_COMPLETED)
                for task in (push, stopping, lost):
                    if task not in finished:
                        task.cancel()
                if lost in finished:
                    raise ConnectionError("connection closed by the server during IDLE")
                if push not in finished:
                    break  # stopping
                lines = push.result()
                if lines == STOP_WAIT_SERVER_PUSH or any(
                        isinstance(x, bytes) and x.endswith((b"EXISTS", b"RECENT")) for x in lines):
                    break  # renewal due, or new mail
        finally:
            conn.client.idle_done()
        # A server that does not confirm DONE is gone without saying so (a silently dead IDLE).
        await asyncio.wait_for(idle, timeout=10)

    async def _sleep_or_stop(self, conn: ImapConnection, seconds: float) -> None:
        stopping = asyncio.ensure_future(self._stop.wait())
        lost = asyncio.ensure_future(conn.lost.wait())
        finished, _ = await asyncio.wait({stopping, lost}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for task in (stopping, lost):
            task.cancel()
        if lost in finished:
            raise ConnectionError("connection closed by the server")
