"""Staff console sign-in (contract section 9): one-time links and the sessions they open.

A link carries a random secret; only its SHA-256 is stored, with the staff user, an expiry
(15 minutes) and, once opened, when it was used -- a link opens one session, once. The
session cookie is another random secret stored the same way, with its own CSRF token that
every POST must echo. Both live in the database, so a link printed by `qopi-bot console
link` on one machine signs staff in on whichever web process serves it."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from pydantic import BaseModel
from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from qopi_bot.clock import utcnow
from qopi_bot.schema import console_tokens

LINK_MINUTES = 15
SESSION_HOURS = 12


class Session(BaseModel):
    user_id: str
    csrf: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


async def issue_link_token(engine: AsyncEngine, user_id: str) -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    async with engine.begin() as conn:
        await conn.execute(insert(console_tokens).values(
            token_hash=_hash(token), kind="link", user_id=user_id, csrf=None,
            expires_at=now + dt.timedelta(minutes=LINK_MINUTES), used_at=None, created_at=now))
        # Old links and sessions are of no use to anyone: keep the table small.
        await conn.execute(delete(console_tokens).where(console_tokens.c.expires_at < now - dt.timedelta(days=1)))
    return token


async def redeem_link(engine: AsyncEngine, token: str, staff: frozenset[str]) -> tuple[str, Session] | None:
    """Spend a sign-in link: a new session (cookie secret, session) or None when the link is
    unknown, used, expired, or its user is no longer staff."""
    now = utcnow()
    async with engine.begin() as conn:
        row = (await conn.execute(select(console_tokens.c.user_id, console_tokens.c.expires_at)
                                  .where(and_(console_tokens.c.token_hash == _hash(token), console_tokens.c.kind == "link",
                                              console_tokens.c.used_at.is_(None))))).first()
        if row is None or _aware(row[1]) < now or row[0] not in staff:
            return None
        # Conditional update: two tabs opening the same link cannot both get a session.
        spent = await conn.execute(update(console_tokens).where(and_(console_tokens.c.token_hash == _hash(token),
                                                                     console_tokens.c.used_at.is_(None)))
                                   .values(used_at=now))
        if spent.rowcount != 1:
            return None
        cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        await conn.execute(insert(console_tokens).values(
            token_hash=_hash(cookie), kind="session", user_id=row[0], csrf=csrf,
            expires_at=now + dt.timedelta(hours=SESSION_HOURS), used_at=None, created_at=now))
    return cookie, Session(user_id=str(row[0]), csrf=csrf)


async def session_for(engine: AsyncEngine, cookie: str | None, staff: frozenset[str]) -> Session | None:
    if not cookie:
        return None
    async with engine.connect() as conn:
        row = (await conn.execute(select(console_tokens.c.user_id, console_tokens.c.csrf, console_tokens.c.expires_at)
                                  .where(and_(console_tokens.c.token_hash == _hash(cookie),
                                              console_tokens.c.kind == "session")))).first()
    if row is None or _aware(row[2]) < utcnow() or row[0] not in staff:
        return None
    return Session(user_id=str(row[0]), csrf=str(row[1]))


async def end_session(engine: AsyncEngine, cookie: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(console_tokens).where(console_tokens.c.token_hash == _hash(cookie)))


def csrf_ok(session: Session, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(session.csrf.encode(), str(submitted).encode())


def link_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/console/signin?token={token}"
