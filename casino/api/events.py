"""Routes: the calendar of known future events (public read, admin write).

The operator's calendar source reads GET /v1/events; only the admin token
may add or delete events.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response

from casino.api.deps import Admin, State
from casino.api.schemas import EventCreate, EventKind, EventOut, Problem, from_ms, to_ms, utc
from casino.events import Event

router = APIRouter(prefix="/v1", tags=["calendar"])
MIN_DT = datetime(1970, 1, 1, tzinfo=UTC)
MAX_DT = datetime(9000, 1, 1, tzinfo=UTC)


def _out(e: Event) -> EventOut:
    return EventOut(id=e.id, name=e.name, kind=e.kind, start=from_ms(e.start_ms), end=from_ms(e.end_ms),
                    expected_lift=e.expected_lift, services=e.services)


def _clamp(value: datetime) -> datetime:
    value = utc(value)
    return min(max(value, MIN_DT), MAX_DT)


@router.get("/events", response_model=list[EventOut], responses={422: {"model": Problem}})
async def events(
    st: State,
    from_: Annotated[datetime | None, Query(alias="from", description="window start (default: now)")] = None,
    to: Annotated[datetime | None, Query(description="window end (default: from + 30 days)")] = None,
    kind: EventKind | None = None,
) -> list[EventOut]:
    """Events overlapping [from, to), by start time."""
    start = _clamp(from_ if from_ is not None else datetime.now(UTC))
    end = _clamp(to) if to is not None else min(start + timedelta(days=30), MAX_DT)
    if end <= start:
        raise HTTPException(status_code=422, detail="to: must be after from")
    return [_out(e) for e in await st.calendar.between(to_ms(start), to_ms(end), kind)]


@router.post("/admin/events", status_code=201, response_model=EventOut, dependencies=[Admin],
             responses={401: {"model": Problem}, 403: {"model": Problem}})
async def add_event(body: EventCreate, st: State) -> EventOut:
    """Add an event (a ``tournament`` event is also a tournament players can enter)."""
    event = await st.calendar.add(body.name, body.kind, to_ms(body.start), to_ms(body.end), body.expected_lift,
                                  body.services)
    return _out(event)


@router.delete("/admin/events/{event_id}", status_code=204, dependencies=[Admin],
               responses={401: {"model": Problem}, 403: {"model": Problem}, 404: {"model": Problem}})
async def delete_event(event_id: Annotated[int, Path(ge=1, le=2**62)], st: State) -> Response:
    if not await st.calendar.delete(event_id):
        raise HTTPException(status_code=404, detail=f"event_id: no event {event_id}")
    return Response(status_code=204)
