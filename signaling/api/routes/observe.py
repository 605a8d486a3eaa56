"""The node's observability over HTTP: ``/metrics`` for Prometheus, the alarms, and the scanner
defence's counters and dynamic blacklist (docs/observability.md, docs/defence.md).

Built only when the API runs inside a node (:func:`observe_router` needs its
:class:`~signaling.observe.driver.Observer`). The handlers are ``async`` on purpose: they read
and change the node's state, which belongs to the node's loop, never to a worker thread.

``/metrics`` asks for no login, as Prometheus scrapes without one; the Web Access Control and
``[api] allow`` still apply to it, the API listens on loopback unless configured, and the
figures carry no secret (counts, gateway names). Everything under ``/api/v1`` needs a login:
the alarms and the defence are the operator's (administrator and operator roles); changing the
blacklist is too.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from signaling.api.deps import StaffUser
from signaling.api.errors import ApiError
from signaling.observe.driver import Observer
from signaling.observe.metrics import build_registry, exposition


class BlockIn(BaseModel):
    """An address or CIDR range to block, for ``seconds`` (absent: until removed)."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(max_length=64)
    seconds: float | None = Field(None, gt=0, le=10 * 365 * 86400)
    reason: str = Field("manual", max_length=200)


def observe_router(observer: Observer, prefix: str) -> APIRouter:
    """``/metrics`` and, under ``prefix`` (the API's ``/api/v1``), the alarms and the defence."""
    node = observer.node
    registry = build_registry(node, alarms=observer.board)
    router = APIRouter()

    @router.get("/metrics", include_in_schema=True, tags=["observability"])
    async def metrics(request: Request) -> Response:
        body, content_type = exposition(registry, accept=request.headers.get("accept"))
        return Response(body, media_type=content_type)

    @router.get(f"{prefix}/alarms", tags=["observability"])
    async def alarms(_: StaffUser, history: int = Query(100, ge=0, le=1000)) -> dict[str, Any]:
        """Active alarms (most severe first), the last ``history`` events, every gateway's
        figures and the defence's counters."""
        return observer.snapshot(history)

    @router.get(f"{prefix}/defence", tags=["observability"])
    async def defence(_: StaffUser) -> dict[str, Any]:
        """The defence's drop counters and the dynamic blacklist (manual and automatic blocks)."""
        now = node.now()
        return {
            "counters": node.defence.counters(),
            "blacklist": [e.to_json(now) for e in node.defence.blacklist.entries(now)],
        }

    @router.post(f"{prefix}/defence/blacklist", status_code=201, tags=["observability"])
    async def block(body: BlockIn, _: StaffUser) -> dict[str, Any]:
        now = node.now()
        try:
            entry = node.defence.blacklist.add(body.address, now, seconds=body.seconds, reason=body.reason)
        except ValueError as exc:
            raise ApiError(422, str(exc)) from None
        return entry.to_json(now)

    @router.delete(f"{prefix}/defence/blacklist/{{address:path}}", status_code=204, tags=["observability"])
    async def unblock(address: str, _: StaffUser) -> Response:
        try:
            found = node.defence.blacklist.remove(address, node.now())
        except ValueError as exc:
            raise ApiError(422, str(exc)) from None
        if not found:
            raise ApiError(404, f"{address} is not on the blacklist")
        return Response(status_code=204)

    return router
