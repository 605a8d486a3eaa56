# The compiled route planner (_planner.pyx): routes.plan_routes_python and admission's routes,
# with the same results.
import random
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from signaling.billing import BillingPolicy, PeriodSwitches, RateSelection, RateSources
from signaling.callproc.limits import Counters
from signaling.callproc.quality import Quality
from signaling.callproc.routes import Candidate, RouteCache, RoutePlan, RouteSettings
from signaling.callproc.snapshot import Snapshot
from signaling.routing import Route
from signaling.store import MappingGateway, RoutingGateway

class Planner:
    def __init__(self, snap: Snapshot, cache: RouteCache) -> None: ...
    def plan(
        self,
        snap: Snapshot,
        ingress: MappingGateway | None,
        number: str,
        *,
        at: datetime,
        now: float,
        day: int,
        counters: Counters,
        quality: Quality,
        customer_price: Fraction | None,
        vendor_funds: Callable[[int], Decimal | None],
    ) -> RoutePlan: ...
    def select_rate(
        self,
        number: str,
        at: datetime,
        sources: RateSources,
        *,
        switches: PeriodSwitches,
        policy: BillingPolicy,
    ) -> RateSelection: ...
    def warm(
        self,
        snap: Snapshot,
        settings_of: Callable[[Snapshot, MappingGateway, RoutingGateway], RouteSettings],
    ) -> None: ...
    def routes(
        self,
        snap: Snapshot,
        ordered: list[Candidate],
        ingress: MappingGateway,
        callee_billing: str,
        caller_billing: str,
        rng: random.Random | None,
        settings_of: Callable[[Snapshot, MappingGateway, RoutingGateway], RouteSettings],
    ) -> list[Route]: ...
