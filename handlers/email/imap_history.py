"""The history rule: what the worker may answer the first time it meets a mailbox.

On the first start against a mailbox (host, user, folder) the worker records the folder's
UIDVALIDITY and UIDNEXT and the time. Mail with a UID below that UIDNEXT was there before
the bot existed: it is history, left where it is, unanswered and unmoved. With
QOPI_IMAP_BACKFILL=true at that first start, the mark is UID 1 instead: everything in the
folder is answered. The mark is kept in the database, so restarts and kill -9 never move it.

If the folder's UIDVALIDITY later changes (the folder was recreated or restored), UIDs no
longer say what is old; the arrival time (INTERNALDATE) against the recorded first start
decides instead.

The mark is one row of the inbox table (source `imap-baseline`, status `baseline`), so no
schema change is needed; no worker ever claims it (workers claim source `email`)."""

from __future__ import annotations

import datetime as dt
import hashlib
from email.utils import parsedate_to_datetime

from pydantic import BaseModel
from sqlalchemy import and_, insert, select
from sqlalchemy.exc import IntegrityError

from qopi_bot.clock import utcnow
from qopi_bot.schema import inbox
from qopi_bot.store import Store

SOURCE = "imap-baseline"


class Baseline(BaseModel):
    uidvalidity: int
    first_uid: int  # mail with a lower UID (same UIDVALIDITY) is history
    started_at: dt.datetime

    def is_history(self, uidvalidity: int, uid: int, internaldate: str) -> bool:
        if uidvalidity == self.uidvalidity:
            return uid < self.first_uid
        arrived = internaldate_utc(internaldate)
        # INTERNALDATE has whole seconds: mail from the very second of the first start is new.
        return arrived is not None and arrived < self.started_at.replace(microsecond=0)


def internaldate_utc(value: str) -> dt.datetime | None:
    """IMAP INTERNALDATE ("02-Mar-2026 08:41:17 -0600") as an aware UTC datetime."""
    try:
        day, rest = value.split("-", 1)
        return parsedate_to_datetime(f"{day} {rest.replace('-', ' ', 1)}").astimezone(dt.UTC)
    except (ValueError, TypeError, IndexError):
        return None


def mailbox_key(host: str, user: str, folder: str) -> str:
    text = f"{user.lower()}@{host.lower()}/{folder}"
    return text if len(text) <= 300 else "sha256:" + hashlib.sha256(text.encode()).hexdigest()


async def baseline_for(store: Store, key: str, *, uidvalidity: int, uidnext: int, backfill: bool) -> Baseline:
    """The recorded mark, or record one now (the first start). Two workers starting together
    agree: the unique (source, external_id) index lets only one mark in."""
    found = await _load(store, key)
    if found is not None:
        return found
    mark = Baseline(uidvalidity=uidvalidity, first_uid=1 if backfill else max(uidnext, 1), started_at=utcnow())
    try:
        async with store.engine.begin() as conn:
            await conn.execute(insert(inbox).values(
                source=SOURCE, external_id=key, payload=b"", meta=mark.model_dump(mode="json"), status="baseline",
                attempts=0, created_at=utcnow()))
    except IntegrityError:
        pass
    found = await _load(store, key)
    assert found is not None
    return found


async def _load(store: Store, key: str) -> Baseline | None:
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(inbox.c.meta).where(and_(inbox.c.source == SOURCE,
                                                                  inbox.c.external_id == key)))).first()
    return Baseline.model_validate(row[0]) if row else None
