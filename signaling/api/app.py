"""The ASGI application: ``create_app(context)``.

```python
app = create_app(ApiContext(store, Users(store)))        # + live=, router= inside a node
app.include_router(web_router)                           # other modules join the same app
```

Routes live under ``/api/v1``; the OpenAPI document is ``/api/openapi.json`` and its
interactive page ``/api/docs``. Every route but login needs a session (``deps.current_user``).
With ``context.allow`` set, requests from other addresses are refused (403) before any route:
the reference's Web Access Control (security A.12), for the API and the web manager alike.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from signaling.api import errors
from signaling.api.context import ApiContext, Network
from signaling.api.resources import record_router
from signaling.api.routes import billing, operations, session
from signaling.store import (
    Account,
    Admin,
    GatewayGroup,
    MappingGateway,
    Package,
    PeriodRate,
    Phone,
    Rate,
    RateGroup,
    RoutingGateway,
    WorkCalendar,
)

API_PREFIX = "/api/v1"
API_VERSION = "1.0"


def v1_router() -> APIRouter:
    """Every /api/v1 route."""
    v1 = APIRouter()
    v1.include_router(session.router)
    v1.include_router(billing.router)
    v1.include_router(operations.router)
    for cls, path, tag, filters in (
        (Account, "/accounts", "accounts", ("kind", "parent_id", "code")),
        (Phone, "/phones", "phones", ("account_id",)),
        (MappingGateway, "/mapping-gateways", "mapping gateways", ("account_id", "name")),
        (RoutingGateway, "/routing-gateways", "routing gateways", ("account_id", "name")),
        (GatewayGroup, "/gateway-groups", "gateway groups", ()),
        (RateGroup, "/rate-groups", "rate groups", ("name",)),
        (Rate, "/rates", "rates", ("rate_group_id", "prefix")),
        (Package, "/packages", "packages", ()),
        (WorkCalendar, "/work-calendars", "work calendars", ()),
        (PeriodRate, "/period-rates", "period rates", ()),
    ):
        check = _source_ip_check if cls is RoutingGateway else None
        warnings = _period_rate_warnings if cls is PeriodRate else None
        v1.include_router(record_router(cls, path, tag, filters=filters, check=check, warnings=warnings))
    return v1


def _period_rate_warnings(admin: Admin, period_rate: PeriodRate) -> list[str]:
    """Prefix coverage of a period rate's two tables (behaviour F.5-47): warned, not refused."""
    return admin.period_rate_warnings(period_rate)


def _source_ip_check(request: Request, gateway: RoutingGateway) -> None:
    """A routing gateway's source_ip must be one of the node's local IPs (reference behaviour
    80), when the API runs inside the node and knows them."""
    request.app.state.context.check_source_ip(gateway.source_ip)


def create_app(context: ApiContext, *, routers: Iterable[APIRouter] = ()) -> FastAPI:
    app = FastAPI(
        title="softswitch",
        version=API_VERSION,
        description="The softswitch management API (docs/api.md). Money is a decimal string.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.context = context
    errors.install(app)
    app.include_router(v1_router(), prefix=API_PREFIX)
    for extra in routers:
        app.include_router(extra)
    if context.allow:
        app.add_middleware(AccessControl, allow=context.allow)
    return app


class AccessControl:
    """Refuse (403) every request whose source address is outside ``allow``."""

    def __init__(self, app: ASGIApp, allow: tuple[Network, ...]) -> None:
        self.app = app
        self.allow = allow

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            if not client or not self.permits(str(client[0])):
                response = JSONResponse(
                    errors.error_body("this address may not use the management interface"), status_code=403
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def permits(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.allow)
