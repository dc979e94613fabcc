"""Request and response bodies of the casino API (pydantic; FastAPI names the field on 422).

Used by every router in ``casino.api``. Money is ``StrictInt`` minor units:
floats, strings and booleans are refused, not coerced.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from casino.events import KINDS

USERNAME = r"^[A-Za-z0-9_.-]{3,32}$"
# Printable text without control characters (PostgreSQL text cannot hold NUL).
PLAIN_TEXT = r"^[^\x00-\x1f\x7f]+$"
HARD_MAX_MINOR = 10**12  # a sanity bound far above any configured limit; settings narrow it
Money = Annotated[StrictInt, Field(gt=0, le=HARD_MAX_MINOR, description="integer minor units (cents), > 0")]
EventKind = Literal["promotion", "tournament", "free_spins", "jackpot", "sports_fixture", "maintenance"]
assert set(KINDS) == set(EventKind.__args__)  # type: ignore[attr-defined]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlayerCreate(Strict):
    username: str = Field(pattern=USERNAME, description="3-32 letters, digits, _ . -")
    password: str = Field(min_length=8, max_length=128)


class SessionCreate(Strict):
    username: str = Field(pattern=USERNAME, description="as registered")
    password: str = Field(min_length=1, max_length=128)


class AmountRequest(Strict):
    amount: Money


class SpinRequest(Strict):
    bet: Money


class PlayerOut(BaseModel):
    id: int
    username: str


class SessionOut(BaseModel):
    token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime


class WalletOut(BaseModel):
    balance: int
    currency: str


class TransactionOut(BaseModel):
    transaction_id: str
    type: Literal["deposit", "withdrawal"]
    amount: int
    balance: int
    currency: str


class SpinOut(BaseModel):
    spin_id: str
    bet: int
    symbols: list[str]
    multiplier: int
    win: int
    balance: int
    currency: str


class LedgerEntryOut(BaseModel):
    id: int
    transaction_id: str
    type: str
    amount: int
    created_at: datetime


def utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def to_ms(value: datetime) -> int:
    return int(utc(value).timestamp() * 1000)


def from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


class EventCreate(Strict):
    name: str = Field(min_length=1, max_length=200, pattern=PLAIN_TEXT)
    kind: EventKind
    start: datetime
    end: datetime
    expected_lift: float | None = Field(None, gt=0, le=1000, description="expected traffic multiplier, e.g. 2.5")
    services: list[Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]] = Field(
        default_factory=list, max_length=50)

    @field_validator("start", "end")
    @classmethod
    def _range(cls, value: datetime) -> datetime:
        value = utc(value)
        if not 1970 <= value.year <= 9000:
            raise ValueError("expected a date between 1970 and 9000")
        return value

    @field_validator("expected_lift")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("expected a finite number")
        return value

    @model_validator(mode="after")
    def _window(self) -> EventCreate:
        if self.end <= self.start:
            raise ValueError("end: must be after start")
        return self


class EventOut(BaseModel):
    id: int
    name: str
    kind: str
    start: datetime
    end: datetime
    expected_lift: float | None
    services: list[str]


class TournamentOut(BaseModel):
    id: int
    name: str
    start: datetime
    end: datetime
    status: Literal["upcoming", "running", "finished"]


class EntryOut(BaseModel):
    tournament_id: int
    username: str
    entered: bool


class LeaderboardRow(BaseModel):
    rank: int
    username: str
    score: int


class Problem(BaseModel):
    detail: str
