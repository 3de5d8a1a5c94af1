"""A rounds calendar for reminder tests, relative to the real date the processes run on:
the practice's score is from Spring Y-1 and can be used until the close of Spring Y, which
the test publishes (or not) as `today + days`. Dates move by the rounds file and --today,
never by waiting."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass
class Calendar:
    path: Path
    today: dt.date
    completed: str  # "Spring 2026": the round the practice's score is from
    target: str  # "Spring 2027": its score is valid until this round closes
    year: int

    def publish(self, last_day: dt.date | None) -> None:
        rounds: list[dict[str, object]] = [{"season": "spring", "year": self.year - 1},
                                           {"season": "spring", "year": self.year}]
        if last_day is not None:
            rounds[1]["closes"] = last_day.isoformat()
        self.path.write_text(yaml.safe_dump({"rounds": rounds}), encoding="utf-8")

    def day(self, offset: int) -> dt.date:
        return self.today + dt.timedelta(days=offset)


def calendar(tmp_path: Path, close_in_days: int | None = 60) -> Calendar:
    today = dt.date.today()
    year = (today + dt.timedelta(days=60)).year
    cal = Calendar(path=tmp_path / "rounds.yaml", today=today, completed=f"Spring {year - 1}",
                   target=f"Spring {year}", year=year)
    cal.publish(today + dt.timedelta(days=close_in_days) if close_in_days is not None else None)
    return cal


def long_date(day: dt.date) -> str:
    return f"{day.day} {day.strftime('%B')} {day.year}"
