"""Request and response bodies of the casino API (pydantic; FastAPI names the field on 422).

Used by every router in ``casino.api``. Money is integer minor units: strings, booleans
and numbers with a fraction are refused, not coerced; a whole number written
``10.0`` is the integer 10 (the JSON data model and JSON Schema's ``integer``
do not tell them apart). Timestamps are
``Timestamp``: an RFC 3339 string with a timezone, years 1970 to 8999 (the
same rule is in the OpenAPI document as a pattern), nothing else (no
integers, no dates without a time, no naive times).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictInt,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from casino.events import KINDS

USERNAME = r"^[A-Za-z0-9_.-]{3,32}$"
# Printable text without control characters (PostgreSQL text cannot hold NUL).
PLAIN_TEXT = r"^[^\x00-\x1f\x7f]+$"
HARD_MAX_MINOR = 10**12  # a sanity bound far above any configured limit; settings narrow it


def _whole(value: Any) -> Any:
    """``10.0`` -> ``10`` (the same JSON number); anything else is left for StrictInt to judge."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Money = Annotated[StrictInt, Field(gt=0, le=HARD_MAX_MINOR, description="integer minor units (cents), > 0"),
                  BeforeValidator(_whole)]
EventKind = Literal["promotion", "tournament", "free_spins", "jackpot", "sports_fixture", "maintenance"]
assert set(KINDS) == set(EventKind.__args__)  # type: ignore[attr-defined]

RFC3339 = (r"^(19[7-9][0-9]|[2-8][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]"
           r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")
_RFC3339 = re.compile(RFC3339)
TIMESTAMP_HELP = "an RFC 3339 timestamp with a timezone, years 1970 to 8999, e.g. 2030-01-04T18:00:00Z"


def parse_timestamp(value: Any) -> datetime:
    """A strict RFC 3339 timestamp as an aware UTC datetime (ValueError otherwise; never OverflowError)."""
    if isinstance(value, datetime) and value.tzinfo is not None:  # built in code, not parsed from a request
        return value.astimezone(UTC)
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError(f"expected {TIMESTAMP_HELP}")
    try:
        return datetime.fromisoformat(value.upper()).astimezone(UTC)
    except ValueError:  # the pattern lets through days a month does not have (2030-02-30)
        raise ValueError(f"not a calendar date: expected {TIMESTAMP_HELP}") from None


Timestamp = Annotated[datetime, PlainValidator(parse_timestamp), WithJsonSchema(
    {"type": "string", "format": "date-time", "pattern": RFC3339, "description": TIMESTAMP_HELP})]


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
    """A calendar event. Rule across fields (not expressible in JSON Schema): ``end`` must be after ``start``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"x-pitboss-rules": ["end > start"]})

    name: str = Field(min_length=1, max_length=200, pattern=PLAIN_TEXT)
    kind: EventKind
    start: Timestamp
    end: Annotated[Timestamp, Field(description=f"{TIMESTAMP_HELP}; must be after start")]
    expected_lift: float | None = Field(None, gt=0, le=1000, description="expected traffic multiplier, e.g. 2.5")
    services: list[Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]] = Field(
        default_factory=list, max_length=50)

    @field_validator("expected_lift")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("expected a finite number")
        return value

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")
        if start is not None and value <= start:
            raise ValueError("must be after start")
        return value


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
