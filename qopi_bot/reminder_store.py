"""Reminder rows in the database: schedule, cancel, list, and hand due ones to the outbox.

Handing over is exactly once across processes and restarts: in ONE transaction a reminder
goes pending -> sent (only if it is still pending) and its outbox item is inserted under the
dedupe key `reminder:<id>`. On PostgreSQL due rows are claimed with FOR UPDATE SKIP LOCKED,
so several web/worker processes share the work; on SQLite the single writer and the
still-pending re-check do the same. A database outage rolls the whole step back; the next
check does it again. The outbox then delivers with its own retries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from qopi_bot.clock import utcnow
from qopi_bot.reminders import Planned, Subject
from qopi_bot.schema import outbox, reminders

if TYPE_CHECKING:
    from qopi_bot.store import Store


class ReminderRecord(BaseModel):
    id: int
    conversation_key: str
    channel: str
    origin: dict[str, Any]
    kind: str
    days_before: int | None
    due: dt.date | None
    status: str
    subject: Subject
    created_at: dt.datetime | None = None
    sent_at: dt.datetime | None = None

    def summary_json(self) -> dict[str, Any]:
        return {"id": self.id, "conversation": self.conversation_key, "channel": self.channel,
                "due": self.due.isoformat() if self.due else None, "status": self.status, "kind": self.kind,
                "days_before": self.days_before, "round": self.subject.completed_round.label(),
                "score": self.subject.score, "sent_at": self.sent_at.isoformat() if self.sent_at else None}


# What the runner turns a due reminder into: (outbox channel, payload, recipient).
Render = Callable[[ReminderRecord], tuple[str, dict[str, Any], str | None] | None]
# For a published close date: the notice, and the dated reminders that follow it.
Publish = Callable[[ReminderRecord], tuple[tuple[str, dict[str, Any], str | None], list[Planned]] | None]


def _record(r: Any) -> ReminderRecord:
    def aware(v: dt.datetime | None) -> dt.datetime | None:
        return v.replace(tzinfo=dt.UTC) if v is not None and v.tzinfo is None else v
    return ReminderRecord(id=r["id"], conversation_key=r["conversation_key"], channel=r["channel"], origin=r["origin"],
                          kind=r["kind"], days_before=r["days_before"], due=r["due"], status=r["status"],
                          subject=Subject.model_validate(r["subject"]), created_at=aware(r["created_at"]),
                          sent_at=aware(r["sent_at"]))


class ReminderStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def replace(self, conversation_key: str, channel: str, origin: dict[str, Any], subject: Subject,
                      items: Sequence[Planned]) -> int:
        """Cancel what is still pending for the conversation and schedule `items` instead, in
        one transaction. Returns how many were cancelled."""
        now = utcnow()
        async with self.store.engine.begin() as conn:
            cancelled = await self._cancel(conn, conversation_key, now)
            if items:
                await conn.execute(insert(reminders), [
                    {"conversation_key": conversation_key, "channel": channel, "origin": origin, "kind": i.kind,
                     "days_before": i.days_before, "due": i.due, "status": "pending",
                     "subject": subject.model_dump(mode="json"), "created_at": now, "updated_at": now}
                    for i in items])
        return cancelled

    async def cancel(self, conversation_key: str) -> int:
        async with self.store.engine.begin() as conn:
            return await self._cancel(conn, conversation_key, utcnow())

    @staticmethod
    async def _cancel(conn: AsyncConnection, conversation_key: str, now: dt.datetime) -> int:
        done = await conn.execute(update(reminders).where(and_(reminders.c.conversation_key == conversation_key,
                                                               reminders.c.status == "pending"))
                                  .values(status="cancelled", updated_at=now))
        return int(done.rowcount or 0)

    async def list(self, conversation_key: str | None = None, status: str | None = None) -> list[ReminderRecord]:
        query = select(reminders).order_by(reminders.c.id)
        if conversation_key is not None:
            query = query.where(reminders.c.conversation_key == conversation_key)
        if status is not None:
            query = query.where(reminders.c.status == status)
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_record(r) for r in rows]

    # ------------------------------------------------------------------ handing over
    async def send_due(self, today: dt.date, render: Render, limit: int = 50) -> int:
        """Queue up to `limit` dated reminders due on or before `today`; how many were queued."""
        due = and_(reminders.c.status == "pending", reminders.c.due.is_not(None), reminders.c.due <= today)
        if not await self._any(due):
            return 0
        async with self.store.engine.begin() as conn:
            rows = await self._claimable(conn, due, limit)
            sent = 0
            for row in rows:
                item = render(row)
                if item is None:  # cannot be rendered, now or later: drop it rather than block the queue
                    await conn.execute(update(reminders).where(reminders.c.id == row.id)
                                       .values(status="cancelled", updated_at=utcnow()))
                    continue
                if await self._mark_sent(conn, row.id, today) and await self._queue(conn, row, item):
                    sent += 1
        return sent

    async def publish_dates(self, today: dt.date, publish: Publish, limit: int = 50) -> int:
        """Reminders waiting for a close date: once the calendar has it, send the notice and
        schedule the dated reminders. Returns how many notices were queued."""
        waiting = and_(reminders.c.status == "pending", reminders.c.due.is_(None))
        if not await self._any(waiting):
            return 0
        async with self.store.engine.begin() as conn:
            rows = await self._claimable(conn, waiting, limit)
            sent = 0
            now = utcnow()
            for row in rows:
                found = publish(row)
                if found is None:
                    continue  # still not published
                notice, follow = found
                if not (await self._mark_sent(conn, row.id, today) and await self._queue(conn, row, notice)):
                    continue
                sent += 1
                if follow:
                    await conn.execute(insert(reminders), [
                        {"conversation_key": row.conversation_key, "channel": row.channel, "origin": row.origin,
                         "kind": i.kind, "days_before": i.days_before, "due": i.due, "status": "pending",
                         "subject": row.subject.model_dump(mode="json"), "created_at": now, "updated_at": now}
                        for i in follow])
        return sent

    async def _any(self, where: Any) -> bool:
        """A plain read first: a check with nothing to do takes no lock at all."""
        async with self.store.engine.connect() as conn:
            return (await conn.execute(select(reminders.c.id).where(where).limit(1))).first() is not None

    async def _claimable(self, conn: AsyncConnection, where: Any, limit: int) -> list[ReminderRecord]:
        if not self.store.is_postgres:
            # Take SQLite's write lock before reading (waiting for it under busy_timeout): a read
            # snapshot that another process writes after cannot be upgraded, and SQLite would
            # refuse at once with "database is locked" instead of waiting.
            await conn.execute(update(reminders).where(reminders.c.id < 0).values(status=reminders.c.status))
        query = select(reminders).where(where).order_by(reminders.c.due, reminders.c.id).limit(limit)
        if self.store.is_postgres:
            query = query.with_for_update(skip_locked=True)
        return [_record(r) for r in (await conn.execute(query)).mappings().all()]

    @staticmethod
    async def _mark_sent(conn: AsyncConnection, reminder_id: int, today: dt.date) -> bool:
        # The still-pending re-check: a row another process handed over (or a practice
        # cancelled) in the meantime is left alone.
        now = utcnow()
        done = await conn.execute(update(reminders).where(and_(reminders.c.id == reminder_id, reminders.c.status == "pending"))
                                  .values(status="sent", sent_at=now, updated_at=now,
                                          due=func.coalesce(reminders.c.due, today)))
        return done.rowcount == 1

    async def _queue(self, conn: AsyncConnection, row: ReminderRecord,
                     item: tuple[str, dict[str, Any], str | None]) -> bool:
        channel, payload, recipient = item
        upsert = pg_insert if self.store.is_postgres else sqlite_insert
        now = utcnow()
        done = await conn.execute(upsert(outbox).values(
            channel=channel, kind="reminder", recipient=recipient, payload=payload, dedupe_key=f"reminder:{row.id}",
            status="pending", attempts=0, next_attempt_at=now, created_at=now).on_conflict_do_nothing(
            index_elements=[outbox.c.dedupe_key]))
        return done.rowcount == 1
