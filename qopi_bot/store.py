"""Durable state: conversations, transcripts, cases, Slack event ids, inbox and outbox.

SQLAlchemy Core on the async engine: SQLite (aiosqlite) by default, PostgreSQL (asyncpg)
when DATABASE_URL says so. Work queues (inbox/outbox) are claimed with a lease, using
FOR UPDATE SKIP LOCKED on PostgreSQL, so several processes can share them and work held by
a process that died is picked up again when its lease runs out."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    Table, and_, bindparam, event, func, insert, or_, select, update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from qopi_bot.audit import AnswerRecord, answer_row
from qopi_bot.clock import utcnow
from qopi_bot.dbexec import SyncRunner
from qopi_bot.prepared import execute as run
from qopi_bot.schema import (  # noqa: F401  (tables re-exported for tests and tools)
    answer_log, case_events, cases, conversations, email_threads, inbox, is_open, messages, metadata, outbox, processed_events,
)
from qopi_bot.models import ConversationState
from qopi_bot.records import CaseEvent, CaseRecord, InboxItem, OutboxItem
from qopi_bot.unit import Op, Unit, UnitConflict

T = TypeVar("T")

__all__ = ["Store", "StoreUnavailable", "Unit", "UnitConflict", "metadata", "utcnow"]

def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands back naive datetimes; everything we store is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")  # web and worker processes share the file
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()


class StoreUnavailable(Exception):
    """The database cannot be reached; callers answer 'try again later', never 'done'."""


class Store:
    def __init__(self, engine: AsyncEngine, read_engine: AsyncEngine | None = None) -> None:
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"
        self.owner = uuid.uuid4().hex[:16]
        self.runner = SyncRunner(engine)  # one hop per transaction on SQLite (qopi_bot.dbexec)
        # A single-writer SQLite store reads on connections of its own (WAL: readers never wait
        # for the writer): an item's reads then do not queue behind other items' commits.
        self._read_engine = read_engine
        self.reader = SyncRunner(read_engine) if read_engine is not None else self.runner
        self._statements: dict[tuple[Any, ...], Any] = {}  # hot statements, built once (see _insert_ignore)

    @classmethod
    def from_url(cls, url: str, *, sqlite_connections: int | None = None) -> Store:
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
            # Every transaction ends in a commit or rollback of its own; the pool's extra
            # rollback on return would be one more thread hop per use.
            kwargs["pool_reset_on_return"] = None
            if sqlite_connections:
                # SQLite has one writer at a time. With one connection, a process's statements
                # queue in order in the pool instead of polling SQLite's lock (sleeps up to
                # 100 ms each), which keeps a latency-bound process (Slack acks) predictable.
                kwargs.update(pool_size=sqlite_connections, max_overflow=0)
        else:
            kwargs.update(pool_pre_ping=True, pool_size=5, max_overflow=5)
        engine = create_async_engine(url, **kwargs)
        read_engine = None
        if url.startswith("sqlite"):
            _sqlite_pragmas(engine)
            if sqlite_connections and ":memory:" not in url and "mode=memory" not in url:
                read_engine = create_async_engine(url, **{**kwargs, "pool_size": 2, "max_overflow": 0})
                _sqlite_pragmas(read_engine)
        return cls(engine, read_engine)

    async def create_schema(self) -> None:
        """Bring the schema to the newest migration (Alembic), as `qopi-bot db upgrade` does."""
        from qopi_bot.migrate import upgrade

        await upgrade(self)

    async def close(self) -> None:
        await self.engine.dispose()
        if self._read_engine is not None:
            await self._read_engine.dispose()

    # ------------------------------------------------------------ units of work
    async def apply(self, *units: Unit) -> None:
        """Commit the writes collected on `units` in one transaction: all of them or none.
        Raises UnitConflict (everything rolled back, the units keep their writes, so they
        can be applied again one by one) when one finds its work done elsewhere."""
        ops = [op for u in units for op in u.ops]
        if not ops:
            return
        for u in units:
            u._pending_leased = []
        await self.runner.run(lambda c: [op(c) for op in ops])
        for u in units:
            u.ops = []
            u.leased.extend(u._pending_leased)
            u._pending_leased = []

    async def _write(self, unit: Unit | None, op: Op) -> Any:
        """Run a write now, in its own transaction, or collect it on `unit` (then None)."""
        if unit is not None:
            unit.add(op)
            return None
        return await self.runner.run(op)

    def _insert_ignore(self, table: Table, *conflict: Any, returning: Any = None) -> Any:
        """INSERT ... ON CONFLICT DO NOTHING, built once and executed with the row as parameters:
        building `.values(row)` per call (and its cache key) cost more than running it."""
        key = (table.name, *(c.name for c in conflict), returning.name if returning is not None else None)
        stmt = self._statements.get(key)
        if stmt is None:
            upsert = pg_insert if self.is_postgres else sqlite_insert
            stmt = upsert(table).on_conflict_do_nothing(index_elements=list(conflict))
            if returning is not None:
                stmt = stmt.returning(returning)
            self._statements[key] = stmt
        return stmt

    # ------------------------------------------------------------ conversations
    def _load_state_query(self) -> Any:
        query = self._statements.get(("conversations", "load"))
        if query is None:  # built once: every message asks
            query = select(conversations.c.state).where(conversations.c.key == bindparam("key"))
            self._statements[("conversations", "load")] = query
        return query

    async def load_state(self, key: str) -> ConversationState | None:
        query = self._load_state_query()
        row = await self.reader.run(lambda conn: run(conn, query, {"key": key}).first(), write=False)
        return ConversationState.model_validate(row[0]) if row else None

    async def save_turn(self, key: str, channel: str, state: ConversationState,
                        lines: Sequence[tuple[str, str | None, str]], answer: AnswerRecord | None = None, *,
                        unit: Unit | None = None) -> None:
        """A turn's new state, transcript lines and answer-log record, in one transaction (or in `unit`'s)."""
        now = utcnow()
        logged = answer_row(answer) if answer is not None else None
        data = state.model_dump(mode="json")
        rows = [{"conversation_key": key, "role": role, "author": author, "text": text, "created_at": now}
                for role, author, text in lines]

        save = self._save_state_statement()
        log_insert, line_insert = self._plain_insert(answer_log), self._plain_insert(messages)
        state_row = dict(key=key, channel=channel, state=data, created_at=now, updated_at=now)

        def op(conn: Connection) -> None:
            if logged is not None:
                run(conn, log_insert, logged)
            if rows:
                run(conn, line_insert, rows)
            run(conn, save, state_row)

        await self._write(unit, op)

    def _plain_insert(self, table: Table) -> Any:
        stmt = self._statements.get((table.name, "insert"))
        if stmt is None:
            stmt = self._statements[(table.name, "insert")] = insert(table)
        return stmt

    def _save_state_statement(self) -> Any:
        # One statement whether the conversation is new or not (an insert that turns into an update).
        save = self._statements.get(("conversations", "save"))
        if save is None:
            upsert = (pg_insert if self.is_postgres else sqlite_insert)(conversations)
            save = upsert.on_conflict_do_update(index_elements=[conversations.c.key],
                                                set_={"state": upsert.excluded.state, "updated_at": upsert.excluded.updated_at})
            self._statements[("conversations", "save")] = save
        return save

    async def add_message(self, key: str, role: str, text: str, author: str | None = None, *,
                          unit: Unit | None = None) -> None:
        row = dict(conversation_key=key, role=role, author=author, text=text, created_at=utcnow())
        await self._write(unit, lambda conn: conn.execute(insert(messages).values(row)))

    async def transcript(self, key: str, limit: int = 50) -> list[tuple[str, str | None, str]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(messages.c.role, messages.c.author, messages.c.text)
                                       .where(messages.c.conversation_key == key)
                                       .order_by(messages.c.id.desc()).limit(limit))).all()
        return [(r[0], r[1], r[2]) for r in reversed(rows)]

    # ------------------------------------------------------------ cases
    async def insert_case(self, *, conversation_key: str, reason: str, channel: str, origin: dict[str, Any],
                          question: str, facts: dict[str, Any], decision: dict[str, Any]) -> CaseRecord:
        now = utcnow()
        async with self.engine.begin() as conn:
            result = await conn.execute(insert(cases).values(
                conversation_key=conversation_key, status="open", reason=reason, channel=channel, origin=origin,
                question=question, facts=facts, decision=decision, created_at=now, updated_at=now,
            ).returning(cases.c.id))
            case_id = int(result.scalar_one())
            await conn.execute(insert(case_events).values(case_id=case_id, kind="opened", author="bot",
                                                          text=question, created_at=now))
        case = await self.get_case(case_id)
        assert case is not None
        return case

    async def get_case(self, case_id: int) -> CaseRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(cases).where(cases.c.id == case_id))).mappings().first()
            if row is None:
                return None
            evs = (await conn.execute(select(case_events).where(case_events.c.case_id == case_id)
                                      .order_by(case_events.c.id))).mappings().all()
        return _case(row, evs)

    async def list_cases(self, status: str | None = None) -> list[CaseRecord]:
        query = select(cases).order_by(cases.c.id)
        if status:
            query = query.where(cases.c.status == status)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_case(r, []) for r in rows]

    async def find_case_by_staff_thread(self, channel: str, ts: str) -> CaseRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(cases.c.id).where(and_(cases.c.staff_slack_channel == channel,
                                                                    cases.c.staff_slack_ts == ts)))).first()
        return await self.get_case(int(row[0])) if row else None

    async def update_case(self, case_id: int, **values: Any) -> None:
        values["updated_at"] = utcnow()
        async with self.engine.begin() as conn:
            await conn.execute(update(cases).where(cases.c.id == case_id).values(**values))

    async def set_case_mail_id_once(self, case_id: int, message_id: str) -> str:
        """Record the case mail's Message-ID unless one is already recorded; return the one
        in force. A retried delivery then sends the very same id (and token)."""
        async with self.engine.begin() as conn:
            await conn.execute(update(cases).where(and_(cases.c.id == case_id, cases.c.staff_email_message_id.is_(None)))
                               .values(staff_email_message_id=message_id, updated_at=utcnow()))
            row = (await conn.execute(select(cases.c.staff_email_message_id).where(cases.c.id == case_id))).first()
        return str(row[0]) if row and row[0] else message_id

    async def transition_case(self, case_id: int, allowed_from: Sequence[str], **values: Any) -> bool:
        """Change a case only if it is still in one of `allowed_from` (no lost updates)."""
        values["updated_at"] = utcnow()
        async with self.engine.begin() as conn:
            done = await conn.execute(update(cases).where(and_(cases.c.id == case_id, cases.c.status.in_(allowed_from)))
                                      .values(**values))
        return done.rowcount == 1

    async def add_case_event(self, case_id: int, kind: str, author: str | None, text: str | None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(case_events).values(case_id=case_id, kind=kind, author=author, text=text,
                                                          created_at=utcnow()))

    # ------------------------------------------------------------ Slack event dedupe
    async def claim_event(self, event_id: str, source: str = "slack") -> bool:
        """True exactly once per event id, across processes and restarts."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(processed_events).values(event_id=event_id, source=source, created_at=utcnow()))
            return True
        except IntegrityError:
            return False

    async def claim_message(self, message_key: str, event_id: str, *, unit: Unit | None = None) -> bool:
        """True if `event_id` may answer this message: the first to claim it, or the same
        event again (a retried inbox item whose answer's outbox key dedupes it anyway).
        Stops a message that arrived twice -- as a live event and again from the catch-up
        after an outage -- from being answered twice.

        With `unit`, the check is a read now and the claim joins the unit: if another event
        claimed the message in between, applying the unit raises UnitConflict and nothing
        of this answer is written."""
        if unit is not None:
            may, _state = await self.claim_message_and_state(message_key, event_id, None, unit=unit)
            return may
        owner = _claim_owner(event_id)
        if await self.claim_event(message_key, source=owner):
            return True
        held = self._claim_holder_query()
        row = await self.reader.run(lambda conn: run(conn, held, {"key": message_key}).first(), write=False)
        return row is not None and row[0] == owner

    def _claim_holder_query(self) -> Any:
        query = self._statements.get(("processed_events", "holder"))
        if query is None:  # built once: every answered Slack message asks
            query = select(processed_events.c.source).where(processed_events.c.event_id == bindparam("key"))
            self._statements[("processed_events", "holder")] = query
        return query

    async def claim_message_and_state(self, message_key: str, event_id: str, conversation_key: str | None, *,
                                      unit: Unit) -> tuple[bool, ConversationState | None]:
        """claim_message (with `unit`) and the state of `conversation_key`, in one read: one
        thread hop instead of two for every answered Slack message."""
        owner = _claim_owner(event_id)
        held, load = self._claim_holder_query(), self._load_state_query()

        def read(conn: Connection) -> tuple[Any, Any]:
            row = run(conn, held, {"key": message_key}).first()
            if conversation_key is None or (row is not None and row[0] != owner):
                return row, None
            state = run(conn, load, {"key": conversation_key}).first()
            return row, state[0] if state else None

        row, state = await self.reader.run(read, write=False)
        loaded = ConversationState.model_validate(state) if state is not None else None
        if row is not None:
            return bool(row[0] == owner), loaded
        values = dict(event_id=message_key, source=owner, created_at=utcnow())
        stmt = self._insert_ignore(processed_events, processed_events.c.event_id)

        def op(conn: Connection) -> None:
            if run(conn, stmt, values).rowcount == 1:
                return
            if run(conn, held, {"key": message_key}).scalar_one_or_none() != owner:
                raise UnitConflict(f"{message_key} already answered")

        unit.add(op)
        return True, loaded

    async def inbox_newest(self, source: str) -> dt.datetime | None:
        """When this source last stored anything: where a catch-up after an outage starts."""
        async with self.engine.connect() as conn:
            value = (await conn.execute(select(func.max(inbox.c.created_at)).where(inbox.c.source == source))).scalar_one()
        return _aware(value)

    # ------------------------------------------------------------ inbox
    async def inbox_put_many(self, source: str, items: Sequence[tuple[str, bytes, dict[str, Any]]]) -> list[int | None]:
        """Store inbound items (external_id, payload, meta) durably, in one transaction (a group
        commit for bursts); each item's new id, or None where it was stored before (a retry)."""
        if not items:
            return []
        now = utcnow()
        rows = [dict(source=source, external_id=e, payload=p, meta=m, status="pending", attempts=0, created_at=now)
                for e, p, m in items]
        # One prebuilt statement per row, all in one transaction (one thread hop): building a
        # multi-row VALUES for each burst cost more than running it. A repeat within the
        # batch conflicts with the first, so it is not new either.
        stmt = self._insert_ignore(inbox, inbox.c.source, inbox.c.external_id, returning=inbox.c.id)

        def put(conn: Connection) -> list[int | None]:
            return [run(conn, stmt, row).scalar_one_or_none() for row in rows]

        return [int(i) if i is not None else None for i in await self.runner.run(put)]

    async def inbox_waiting(self, source: str) -> int:
        """How many of `source`'s items are stored and not finished yet (pending or leased),
        by every process sharing the database; counted on the partial index of open rows."""
        query = self._statements.get(("inbox", "waiting"))
        if query is None:  # built once: a held 250 asks while its burst lasts
            query = select(func.count()).select_from(inbox).where(and_(inbox.c.source == bindparam("scope"), is_open(inbox)))
            self._statements[("inbox", "waiting")] = query
        return int(await self.reader.run(lambda conn: run(conn, query, {"scope": source}).scalar_one(), write=False))

    async def inbox_claim(self, source: str, lease_seconds: int, limit: int = 10) -> list[InboxItem]:
        def claimable() -> Any:
            now = bindparam("now", type_=inbox.c.lease_until.type)
            # status IN (...) first: the words of the partial index ix_inbox_open, so it is used.
            return and_(inbox.c.source == bindparam("scope"), is_open(inbox), or_(
                inbox.c.status == "pending", and_(inbox.c.status == "leased", inbox.c.lease_until < now)))

        rows = await self._claim(inbox, claimable, inbox.c.id, lease_seconds, limit, scope=source)
        return [InboxItem(id=r["id"], source=r["source"], external_id=r["external_id"], payload=r["payload"],
                          meta=r["meta"], attempts=r["attempts"]) for r in rows]

    async def inbox_finish(self, item_id: int, status: str, error: str | None = None, *,
                           unit: Unit | None = None) -> None:
        stmt = self._statements.get(("inbox", "finish"))
        if stmt is None:  # built once: every item ends here
            stmt = (update(inbox).where(and_(inbox.c.id == bindparam("item_id"), inbox.c.lease_owner == bindparam("owner")))
                    .values(status=bindparam("new_status"), last_error=bindparam("error"),
                            processed_at=bindparam("at", type_=inbox.c.processed_at.type), lease_until=None))
            self._statements[("inbox", "finish")] = stmt
        params = {"item_id": item_id, "owner": self.owner, "new_status": status, "error": error, "at": utcnow()}
        await self._write(unit, lambda conn: run(conn, stmt, params))

    async def inbox_release(self, item_id: int, error: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(inbox).where(inbox.c.id == item_id)
                               .values(status="pending", last_error=error, lease_until=None))

    async def inbox_release_unstarted(self, item_ids: Sequence[int]) -> None:
        """Give back claimed items this process did not start: pending again, for any process."""
        await self._release(inbox, item_ids)

    async def inbox_set_payload(self, item_id: int, payload: bytes, *, unit: Unit | None = None) -> None:
        """Replace a stored payload, e.g. with a copy whose attachments were dropped after
        processing (attachments may carry patient data and are never kept)."""
        stmt = update(inbox).where(inbox.c.id == item_id).values(payload=payload)
        await self._write(unit, lambda conn: conn.execute(stmt))

    async def inbox_list(self, status: str | None = None) -> list[dict[str, Any]]:
        """Inbound items for operators, without their payloads (message bodies)."""
        cols = [inbox.c.id, inbox.c.source, inbox.c.external_id, inbox.c.status, inbox.c.attempts, inbox.c.last_error,
                inbox.c.created_at, inbox.c.processed_at]
        query = select(*cols).order_by(inbox.c.id)
        if status:
            query = query.where(inbox.c.status == status)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [dict(r) | {"created_at": _aware(r["created_at"]), "processed_at": _aware(r["processed_at"])} for r in rows]

    async def inbox_requeue(self, item_ids: Sequence[int]) -> list[int]:
        """Process failed items again (after the bug is fixed): pending, attempts from zero."""
        async with self.engine.begin() as conn:
            rows = (await conn.execute(update(inbox).where(and_(inbox.c.id.in_(list(item_ids)), inbox.c.status == "failed"))
                                       .values(status="pending", attempts=0, last_error=None, lease_until=None,
                                               lease_owner=None, processed_at=None)
                                       .returning(inbox.c.id))).all()
        return sorted(int(r[0]) for r in rows)

    async def inbox_counts(self) -> dict[str, int]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(inbox.c.status, func.count()).group_by(inbox.c.status))).all()
        return {r[0]: int(r[1]) for r in rows}

    # ------------------------------------------------------------ outbox
    async def outbox_put(self, channel: str, kind: str, payload: dict[str, Any], dedupe_key: str,
                         recipient: str | None = None, *, unit: Unit | None = None) -> int | None:
        """Queue an outbound item; None when `dedupe_key` was queued before (or with `unit`:
        the row is written when the unit is applied)."""
        now = utcnow()
        values: dict[str, Any] = dict(channel=channel, kind=kind, recipient=recipient, payload=payload,
                                      dedupe_key=dedupe_key, status="pending", attempts=0, next_attempt_at=now,
                                      created_at=now)
        if unit is None:
            try:
                async with self.engine.begin() as conn:
                    result = await conn.execute(insert(outbox).values(values).returning(outbox.c.id))
                    return int(result.scalar_one())
            except IntegrityError:
                return None
        held = unit.deliver_here == channel
        if held:  # this process sends it right after the commit: no claim needed
            values.update(status="leased", attempts=1, lease_owner=self.owner,
                          lease_until=now + dt.timedelta(seconds=unit.lease_seconds))
        stmt = self._insert_ignore(outbox, outbox.c.dedupe_key, returning=outbox.c.id)

        def op(conn: Connection) -> None:
            new_id = run(conn, stmt, values).scalar_one_or_none()
            if held and new_id is not None:
                unit._pending_leased.append(OutboxItem(
                    id=int(new_id), channel=channel, kind=kind, recipient=recipient, payload=payload,
                    dedupe_key=dedupe_key, status="leased", attempts=1, next_attempt_at=now, last_error=None,
                    created_at=now, sent_at=None))

        unit.add(op)
        return None

    async def outbox_claim(self, channel: str, lease_seconds: int, limit: int = 10) -> list[OutboxItem]:
        def claimable() -> Any:
            now = bindparam("now", type_=outbox.c.lease_until.type)
            return and_(outbox.c.channel == bindparam("scope"), is_open(outbox), or_(
                and_(outbox.c.status == "pending", outbox.c.next_attempt_at <= now),
                and_(outbox.c.status == "leased", outbox.c.lease_until < now)))

        rows = await self._claim(outbox, claimable, outbox.c.next_attempt_at, lease_seconds, limit, scope=channel)
        return [_outbox(r) for r in rows]

    async def outbox_sent(self, item_id: int, result: dict[str, Any] | None = None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(outbox).where(outbox.c.id == item_id)
                               .values(status="sent", sent_at=utcnow(), result=result, lease_until=None, last_error=None))

    async def outbox_sent_many(self, done: Sequence[tuple[int, dict[str, Any] | None]]) -> None:
        """Record several deliveries in one transaction (the dispatcher's group commit)."""
        if not done:
            return
        stmt = self._statements.get(("outbox", "sent_many"))
        if stmt is None:  # built once: every delivery ends here
            stmt = (update(outbox).where(outbox.c.id == bindparam("item_id"))
                    .values(status="sent", sent_at=bindparam("sent_at", type_=outbox.c.sent_at.type),
                            result=bindparam("sent_result", type_=outbox.c.result.type), lease_until=None, last_error=None))
            self._statements[("outbox", "sent_many")] = stmt
        now = utcnow()
        params = [{"item_id": i, "sent_result": r, "sent_at": now} for i, r in done]
        await self.runner.run(lambda conn: run(conn, stmt, params))

    def _held(self, item_id: int) -> Any:
        # Only while this process still holds the item: after its lease ran out another
        # process may have taken it (and sent it), and that outcome must not be undone.
        return and_(outbox.c.id == item_id, outbox.c.status == "leased", outbox.c.lease_owner == self.owner)

    async def outbox_renew(self, item_id: int, lease_seconds: int) -> bool:
        """Extend the lease on an item this process is still sending; False if it lost it."""
        async with self.engine.begin() as conn:
            done = await conn.execute(update(outbox).where(self._held(item_id))
                                      .values(lease_until=utcnow() + dt.timedelta(seconds=lease_seconds)))
        return done.rowcount == 1

    async def outbox_retry(self, item_id: int, at: dt.datetime, error: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(outbox).where(self._held(item_id))
                               .values(status="pending", next_attempt_at=at, last_error=error, lease_until=None))

    async def outbox_failed(self, item_id: int, error: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(outbox).where(self._held(item_id))
                               .values(status="failed", last_error=error, lease_until=None))

    async def outbox_release(self, item_ids: Sequence[int]) -> None:
        """Give back claimed items this process did not start: due again, for any process."""
        await self._release(outbox, item_ids)

    async def outbox_requeue(self, item_ids: Sequence[int]) -> list[int]:
        """Send failed items again (after the cause is fixed). The give-up clock restarts."""
        now = utcnow()
        async with self.engine.begin() as conn:
            rows = (await conn.execute(update(outbox).where(and_(outbox.c.id.in_(list(item_ids)), outbox.c.status == "failed"))
                                       .values(status="pending", attempts=0, next_attempt_at=now, created_at=now,
                                               last_error=None, lease_until=None, lease_owner=None)
                                       .returning(outbox.c.id))).all()
        return sorted(int(r[0]) for r in rows)

    async def outbox_list(self, status: str | None = None, channel: str | None = None) -> list[OutboxItem]:
        query = select(outbox).order_by(outbox.c.id)
        if status:
            query = query.where(outbox.c.status == status)
        if channel:
            query = query.where(outbox.c.channel == channel)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_outbox(r) for r in rows]

    async def outbox_find(self, dedupe_key: str) -> OutboxItem | None:
        """The item queued under `dedupe_key`, if any: lets a redelivered inbound item see
        that its answer was already queued before it runs the dialogue again."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(outbox).where(outbox.c.dedupe_key == dedupe_key))).mappings().first()
        return _outbox(row) if row else None

    async def outbox_get(self, item_id: int) -> OutboxItem | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(outbox).where(outbox.c.id == item_id))).mappings().first()
        return _outbox(row) if row else None

    def _replies_since_query(self) -> Any:
        query = self._statements.get(("outbox", "replies_since"))
        if query is None:  # built once: every inbound mail asks
            query = select(func.count()).select_from(outbox).where(and_(
                outbox.c.recipient == bindparam("recipient"), outbox.c.kind == bindparam("kind"),
                outbox.c.created_at >= bindparam("since", type_=outbox.c.created_at.type)))
            self._statements[("outbox", "replies_since")] = query
        return query

    async def replies_since(self, recipient: str, since: dt.datetime, kind: str = "reply") -> int:
        query = self._replies_since_query()
        params = {"recipient": recipient.lower(), "kind": kind, "since": since}
        return int(await self.reader.run(lambda conn: run(conn, query, params).scalar_one(), write=False))

    async def email_context(self, thread_ids: Sequence[str], new_key: str, recipient: str,
                            since: dt.datetime) -> tuple[str, int, ConversationState | None] | None:
        """What an inbound practice mail reads before its answer, in one read (one thread hop
        instead of three): the conversation it continues (by its thread ids, else `new_key`),
        the replies `recipient` got since `since` (the reply cap) and that conversation's
        state. None when the thread belongs to a staff case: the caller then reads the
        careful way (qopi_bot_handlers.email.inbound), since a case mail is not a practice's
        thread."""
        threads = (select(email_threads.c.message_id, email_threads.c.conversation_key, email_threads.c.case_id)
                   .where(email_threads.c.message_id.in_(list(thread_ids)))) if thread_ids else None
        count, load = self._replies_since_query(), self._load_state_query()
        params = {"recipient": recipient.lower(), "kind": "reply", "since": since}

        def read(conn: Connection) -> tuple[str, int, Any] | None:
            key = new_key
            if threads is not None:
                by_id = {r[0]: (r[1], r[2]) for r in conn.execute(threads).all()}
                found = next((by_id[m] for m in reversed(list(thread_ids)) if m in by_id), None)  # newest wins
                if found is not None:
                    if found[1] is not None:
                        return None
                    key = found[0]
            row = run(conn, load, {"key": key}).first()
            return key, int(run(conn, count, params).scalar_one()), row[0] if row else None

        found = await self.reader.run(read, write=False)
        if found is None:
            return None
        key, replies, state = found
        return key, replies, ConversationState.model_validate(state) if state is not None else None

    # ------------------------------------------------------------ email threads
    async def link_message_id(self, message_id: str, conversation_key: str, case_id: int | None = None, *,
                              unit: Unit | None = None) -> None:
        """Remember which conversation (and case) an email Message-ID belongs to; the first link wins."""
        values = dict(message_id=message_id, conversation_key=conversation_key, case_id=case_id, created_at=utcnow())
        stmt = self._insert_ignore(email_threads, email_threads.c.message_id)
        await self._write(unit, lambda conn: run(conn, stmt, values))

    async def thread_for(self, message_ids: Sequence[str]) -> tuple[str, int | None] | None:
        if not message_ids:
            return None
        query = (select(email_threads.c.message_id, email_threads.c.conversation_key, email_threads.c.case_id)
                 .where(email_threads.c.message_id.in_(list(message_ids))))
        rows = await self.reader.run(lambda conn: conn.execute(query).all(), write=False)
        if not rows:
            return None
        by_id = {r[0]: (r[1], r[2]) for r in rows}
        for mid in reversed(list(message_ids)):  # the newest reference wins
            if mid in by_id:
                key, case_id = by_id[mid]
                return key, (int(case_id) if case_id is not None else None)
        return None

    # ------------------------------------------------------------ shared claim
    async def _release(self, table: Table, item_ids: Sequence[int]) -> None:
        if not item_ids:
            return
        async with self.engine.begin() as conn:
            await conn.execute(update(table).where(and_(table.c.id.in_(list(item_ids)), table.c.status == "leased",
                                                        table.c.lease_owner == self.owner))
                               .values(status="pending", lease_until=None, attempts=table.c.attempts - 1))

    async def _claim(self, table: Table, claimable: Callable[[], Any], order: Any, lease_seconds: int, limit: int,
                     *, scope: str) -> list[Any]:
        """Lease up to `limit` claimable rows of `scope` (a source or channel). The three
        statements are built once per table and limit, with the times and ids as parameters."""
        now = utcnow()
        lease_until = now + dt.timedelta(seconds=lease_seconds)
        key = (table.name, "claim", limit)
        built = self._statements.get(key)
        if built is None:
            query = select(table.c.id).where(claimable()).order_by(order).limit(limit)
            if self.is_postgres:
                query = query.with_for_update(skip_locked=True)
            until = bindparam("until", type_=table.c.lease_until.type)
            ids = bindparam("ids", expanding=True)
            # The WHERE re-check makes the claim safe on SQLite too: a row another process
            # leased in between is simply not updated, and not returned.
            lease = (update(table).where(and_(table.c.id.in_(ids), claimable()))
                     .values(status="leased", lease_until=until, lease_owner=bindparam("owner"),
                             attempts=table.c.attempts + 1))
            fetch = select(table).where(and_(table.c.id.in_(ids), table.c.lease_owner == bindparam("owner"),
                                             table.c.lease_until == until))
            built = self._statements[key] = (query, lease, fetch)
        query, lease, fetch = built
        params = {"scope": scope, "now": now, "until": lease_until, "owner": self.owner}

        def claim(conn: Connection) -> list[Any]:
            ids = [r[0] for r in conn.execute(query, params).all()]
            if not ids:
                return []
            conn.execute(lease, {**params, "ids": ids})
            return list(conn.execute(fetch, {**params, "ids": ids}).mappings().all())

        return await self.runner.run(claim)


def _claim_owner(event_id: str) -> str:
    return hashlib.sha256(event_id.encode()).hexdigest()[:20]  # fits the source column


def _case(row: Any, evs: Sequence[Any]) -> CaseRecord:
    return CaseRecord(
        number=row["id"], conversation_key=row["conversation_key"], status=row["status"], reason=row["reason"],
        channel=row["channel"], origin=row["origin"], question=row["question"], facts=row["facts"],
        decision=row["decision"], claimed_by=row["claimed_by"], claimed_at=_aware(row["claimed_at"]),
        resolved_at=_aware(row["resolved_at"]), staff_slack_channel=row["staff_slack_channel"],
        staff_slack_ts=row["staff_slack_ts"], staff_email_message_id=row["staff_email_message_id"],
        created_at=_aware(row["created_at"]), updated_at=_aware(row["updated_at"]),
        events=[CaseEvent(kind=e["kind"], author=e["author"], text=e["text"], created_at=_aware(e["created_at"]))
                for e in evs],
    )


def _outbox(r: Any) -> OutboxItem:
    payload = r["payload"]
    if isinstance(payload, str):
        payload = json.loads(payload)
    return OutboxItem(id=r["id"], channel=r["channel"], kind=r["kind"], recipient=r["recipient"], payload=payload,
                      dedupe_key=r["dedupe_key"], status=r["status"], attempts=r["attempts"],
                      next_attempt_at=_aware(r["next_attempt_at"]), last_error=r["last_error"],
                      created_at=_aware(r["created_at"]), sent_at=_aware(r["sent_at"]))
