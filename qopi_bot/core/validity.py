"""VALIDITY: "The score is good for one year and remains valid until the close of the next
'same season' round." Turns a completed round into the last day a score can be used."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

from qopi_bot.core.kb import Knowledge, Round
from qopi_bot.core.rules import VALIDITY, implements
from qopi_bot.models import RoundRef


class ValidityResult(BaseModel):
    completed_round: RoundRef
    valid_until_round: RoundRef
    valid_until: dt.date | None  # None: that round's close date is not published
    can_apply: bool | None  # None: cannot be known on `today` from the published calendar
    basis: str  # why can_apply is what it is, in plain words


@implements(VALIDITY)
def score_validity(completed: RoundRef, today: dt.date, kb: Knowledge) -> ValidityResult:
    """Valid through the last day (inclusive) of the next same-season round."""
    target = completed.next_same_season()
    target_round = kb.round(target)
    closes = target_round.closes if target_round else None
    if closes is not None:
        can_apply: bool | None = today <= closes
        basis = f"the {target.label()} round closes on {closes.isoformat()}"
    else:
        can_apply, basis = _without_close_date(target, target_round, today, kb)
    return ValidityResult(
        completed_round=completed, valid_until_round=target, valid_until=closes,
        can_apply=can_apply, basis=basis,
    )


def _without_close_date(target: RoundRef, target_round: Round | None, today: dt.date,
                        kb: Knowledge) -> tuple[bool | None, str]:
    """With no published close date, only say yes or no when the calendar proves it."""
    if today.year < target.year:
        return True, f"the {target.label()} round cannot have closed before {target.year}"
    # A spring round closes within its own year: the fall round of that year follows it.
    if target.season == "spring" and today.year > target.year:
        return False, f"the {target.label()} round closed during {target.year}, before the fall round of that year"
    # A round named for the fall cannot close before the fall half-year (July) of its year.
    if target.season == "fall" and today < dt.date(target.year, 7, 1):
        return True, f"the {target.label()} round cannot have closed before July {target.year}"
    if target_round is not None and target_round.opens is not None and today < target_round.opens:
        return True, f"the {target.label()} round has not opened yet (opens {target_round.opens.isoformat()})"
    # Rounds follow one another; a later round that has opened (or closed) proves the target closed.
    for later in kb.rounds:
        if later.ref.order_key() <= target.order_key():
            continue
        if (later.opens is not None and later.opens <= today) or (later.closes is not None and later.closes < today):
            return False, f"the {later.ref.label()} round has already started, so {target.label()} has closed"
    return None, f"the {target.label()} close date is not published yet"
