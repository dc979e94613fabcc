"""Routes for operators and Prometheus: /healthz, /readyz, /metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from casino.api.deps import State
from casino.api.problems import problem_response

router = APIRouter(tags=["ops"])
log = logging.getLogger(__name__)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(st: State) -> Response:
    """The database answers (503 otherwise)."""
    try:
        await st.db.ping()
    except Exception as exc:  # any failure to reach the database means "not ready"
        log.warning("readiness check failed: %s", exc)
        return problem_response(503, f"database: unavailable ({type(exc).__name__})", headers={"Retry-After": "5"})
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get("/metrics", response_class=Response)
async def metrics(st: State) -> Response:
    """Prometheus text exposition of this replica's metrics."""
    st.refresh_gauges()
    return Response(st.metrics.render(), media_type=CONTENT_TYPE_LATEST)
