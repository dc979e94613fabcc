"""Routes: the calendar of known future events (public read, admin write).

The operator's calendar source reads GET /v1/events; only the admin token
may add or delete events.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from casino.api.deps import Admin, State
from casino.api.problems import Problem, problem
from casino.api.schemas import TIMESTAMP_HELP, EventCreate, EventKind, EventOut, Timestamp, from_ms, to_ms
from casino.events import Event

router = APIRouter(prefix="/v1", tags=["calendar"])
MAX_DT = datetime(9000, 1, 2, tzinfo=UTC)  # past the latest Timestamp (8999-12-31T23:59:59-23:59)


def _out(e: Event) -> EventOut:
    return EventOut(id=e.id, name=e.name, kind=e.kind, start=from_ms(e.start_ms), end=from_ms(e.end_ms),
                    expected_lift=e.expected_lift, services=e.services)


@router.get("/events", response_model=list[EventOut])
async def events(
    st: State,
    from_: Annotated[Timestamp | None, Query(alias="from", description=f"window start (default: now); "
                                                                        f"{TIMESTAMP_HELP}")] = None,
    to: Annotated[Timestamp | None, Query(description=f"window end (default: from + 30 days); {TIMESTAMP_HELP}")]
    = None,
    kind: EventKind | None = None,
) -> list[EventOut]:
    """Events overlapping [from, to), by start time (an empty window, ``to`` <= ``from``, has none)."""
    start = from_ if from_ is not None else datetime.now(UTC)
    end = to if to is not None else min(start + timedelta(days=30), MAX_DT)
    if end <= start:
        return []
    return [_out(e) for e in await st.calendar.between(to_ms(start), to_ms(end), kind)]


@router.post("/admin/events", status_code=201, response_model=EventOut, dependencies=[Admin],
             responses={403: {"model": Problem}}, openapi_extra={"x-pitboss-rules": ["end > start"]})
async def add_event(body: EventCreate, st: State) -> EventOut:
    """Add an event (a ``tournament`` event is also a tournament players can enter); ``end`` must be after
    ``start`` (422 otherwise)."""
    event = await st.calendar.add(body.name, body.kind, to_ms(body.start), to_ms(body.end), body.expected_lift,
                                  body.services)
    return _out(event)


@router.delete("/admin/events/{event_id}", status_code=204, dependencies=[Admin],
               responses={403: {"model": Problem}, 404: {"model": Problem, "description": "no such event"}})
async def delete_event(event_id: Annotated[int, Path(ge=1, le=2**62)], st: State) -> Response:
    """Delete an event (and its tournament entries)."""
    if not await st.calendar.delete(event_id):
        raise problem(404, f"no event {event_id}", field="event_id", loc=["path", "event_id"])
    return Response(status_code=204)
