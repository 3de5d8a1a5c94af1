"""One line of `qopi-bot ask` standard input, when it is a JSON object (contract section 2)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class StreamLine(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: str = Field(max_length=200_000)
    conversation: str | None = Field(default=None, max_length=200)
    today: dt.date | None = None
    user: str | None = Field(default=None, max_length=200)
