"""The database schema: every table qopi-bot keeps, as SQLAlchemy Core tables.
Alembic migrations (qopi_bot/migrations) are generated against this metadata."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Column, Date, DateTime, Float, Index, Integer, LargeBinary, MetaData, String, Table, Text, literal_column, text
from sqlalchemy.sql.elements import ColumnElement

metadata = MetaData()
_ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only


def _ts() -> Column[dt.datetime]:
    return Column("created_at", DateTime(timezone=True), nullable=False)


conversations = Table(
    "conversations", metadata,
    Column("key", String(300), primary_key=True),
    Column("channel", String(20), nullable=False),
    Column("state", JSON, nullable=False),
    _ts(),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

messages = Table(
    "messages", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("conversation_key", String(300), nullable=False, index=True),
    Column("role", String(20), nullable=False),  # practice | bot | staff
    Column("author", String(200), nullable=True),
    Column("text", Text, nullable=False),
    _ts(),
)

cases = Table(
    "cases", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("conversation_key", String(300), nullable=False, index=True),
    Column("status", String(20), nullable=False, index=True),
    Column("reason", String(40), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("origin", JSON, nullable=False),
    Column("question", Text, nullable=False),
    Column("facts", JSON, nullable=False),
    Column("decision", JSON, nullable=False),
    Column("claimed_by", String(200), nullable=True),
    Column("claimed_at", DateTime(timezone=True), nullable=True),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Column("staff_slack_channel", String(100), nullable=True),
    Column("staff_slack_ts", String(50), nullable=True, index=True),
    Column("staff_email_message_id", String(300), nullable=True),
    _ts(),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

case_events = Table(
    "case_events", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("case_id", _ID, nullable=False, index=True),
    Column("kind", String(30), nullable=False),
    Column("author", String(200), nullable=True),
    Column("text", Text, nullable=True),
    _ts(),
)

processed_events = Table(
    "processed_events", metadata,
    Column("event_id", String(200), primary_key=True),
    Column("source", String(20), nullable=False),
    _ts(),
)

# The rows a claim may take (pending, or leased with a lease that may have run out): the claim
# queries say exactly this, so both databases use the partial indexes below.
OPEN_STATUSES = ("pending", "leased")
_OPEN = text(f"status IN ({', '.join(repr(status) for status in OPEN_STATUSES)})")


def is_open(table: Table) -> ColumnElement[bool]:
    """The partial indexes' condition as a claim writes it: literal values, never bound parameters,
    since a database can only tell a query falls under a partial index from its written words."""
    return table.c.status.in_([literal_column(f"'{status}'") for status in OPEN_STATUSES])


inbox = Table(
    "inbox", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("source", String(20), nullable=False),
    Column("external_id", String(400), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("meta", JSON, nullable=False),
    Column("status", String(20), nullable=False),  # pending | leased | done | ignored | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("last_error", Text, nullable=True),
    _ts(),
    Column("processed_at", DateTime(timezone=True), nullable=True),
    Index("uq_inbox_source_external", "source", "external_id", unique=True),
    Index("ix_inbox_status", "status"),
    # What a claim reads: only the open rows (a few), in order, however many are done. Without
    # it a claim reads every row the source ever stored (done ones too), and gets slower each day.
    Index("ix_inbox_open", "source", "id", sqlite_where=_OPEN, postgresql_where=_OPEN),
)

outbox = Table(
    "outbox", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("channel", String(20), nullable=False),  # slack | email
    Column("kind", String(40), nullable=False),
    Column("recipient", String(300), nullable=True),
    Column("payload", JSON, nullable=False),
    Column("dedupe_key", String(400), nullable=False, unique=True),
    Column("status", String(20), nullable=False),  # pending | leased | sent | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("result", JSON, nullable=True),
    _ts(),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Index("ix_outbox_claim", "channel", "status", "next_attempt_at"),
    Index("ix_outbox_open", "channel", "next_attempt_at", sqlite_where=_OPEN, postgresql_where=_OPEN),
    # Every inbound mail counts the replies its sender got in the last hour (the reply cap):
    # without this index that count reads the whole outbox, which only grows.
    Index("ix_outbox_recipient_kind_created", "recipient", "kind", "created_at"),
)

email_threads = Table(
    "email_threads", metadata,
    Column("message_id", String(400), primary_key=True),
    Column("conversation_key", String(300), nullable=False),
    Column("case_id", _ID, nullable=True),
    _ts(),
)

# Reminders before a score expires (contract section 10). `due` is null while the close date
# they depend on is not published; `subject` holds what they are about (score, round).
reminders = Table(
    "reminders", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("conversation_key", String(300), nullable=False, index=True),
    Column("channel", String(20), nullable=False),  # slack | email
    Column("origin", JSON, nullable=False),
    Column("kind", String(30), nullable=False),  # before_close | date_published
    Column("days_before", Integer, nullable=True),
    Column("due", Date, nullable=True),
    Column("status", String(20), nullable=False),  # pending | sent | cancelled
    Column("subject", JSON, nullable=False),
    _ts(),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Index("ix_reminders_status_due", "status", "due"),
)

# The answer log (contract section 9): one row per answer the bot gave, scrubbed of patient
# details, with the knowledge version in force and how sure the understanding was.
answer_log = Table(
    "answer_log", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    _ts(),
    Column("channel", String(20), nullable=False),
    Column("conversation_key", String(300), nullable=False),
    Column("question", Text, nullable=False),  # the practice's message, scrubbed and cut short
    Column("intent", String(30), nullable=True),
    Column("outcome", String(20), nullable=False),
    Column("verdict", String(40), nullable=True),
    Column("rules", JSON, nullable=False),
    Column("facts", JSON, nullable=False),
    Column("case_id", String(20), nullable=True),
    Column("knowledge_version", String(40), nullable=False),
    Column("confidence", Float, nullable=True),
    Column("understood", String(20), nullable=False),  # clear | low | not_understood
    Index("ix_answer_log_created_at", "created_at"),
    Index("ix_answer_log_conversation_key", "conversation_key"),
)

# Staff console sign-in: one-time links (kind "link") and the sessions they open (kind
# "session"). Only a SHA-256 of each secret is stored, so a copy of the database signs no one in.
console_tokens = Table(
    "console_tokens", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("kind", String(10), nullable=False),
    Column("user_id", String(100), nullable=False),
    Column("csrf", String(64), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
    _ts(),
)
