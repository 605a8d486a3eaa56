"""The demo configuration: just enough in the store for a first call to work on one machine.

- **Customer** account ``1001`` ("Demo customer"), prepaid, balance 10.00, rate group
  ``demo-retail``, behind the mapping gateway ``demo-customer``: calls from 127.0.0.1 (any
  port), authenticated by address.
- **Carriers**: vendor accounts ``carrier-a`` and ``carrier-b`` (postpaid), each with a routing
  gateway of the same name on loopback (127.0.0.1:5081 and :5082 by default), every
  destination. ``carrier-a`` has priority 1 and the cheaper buy rates, ``carrier-b`` priority 2:
  a call goes to carrier-a first and fails over to carrier-b when carrier-a refuses it or does not
  answer, and the CDR then shows both gateways tried and carrier-b's cost.
- **Rates** (per minute, first period then billing cycle, seconds): ``demo-retail`` sells
  1 (North America) at 0.0200 6/6, 44 (United Kingdom) at 0.0300 6/6, 880 (Bangladesh) at 0.0450
  60/6; ``demo-carrier-a`` buys 1 at 0.0080 and 44 at 0.0120, ``demo-carrier-b`` 1 at 0.0110 and
  44 at 0.0150, all 1/1 (per second); neither carrier has 880.

The demo number is :data:`DEMO_NUMBER`; ``softswitch call`` dials it by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from signaling.store import Account, MappingGateway, Rate, RateGroup, RoutingGateway, Store

DEMO_NUMBER = "12125550100"
DEMO_CUSTOMER = "1001"
DEMO_CARRIER_PORTS = (5081, 5082)
DEMO_CARRIERS = ("carrier-a", "carrier-b")
DEMO_OPERATOR = "seed-demo"

#: (prefix, destination, first_time_duration, billing_rate, billing_cycle)
_RETAIL = (
    ("1", "North America", 6, "0.0200", 6),
    ("44", "United Kingdom", 6, "0.0300", 6),
    ("880", "Bangladesh", 60, "0.0450", 6),
)
_BUY = {
    "carrier-a": (("1", "North America", "0.0080"), ("44", "United Kingdom", "0.0120")),
    "carrier-b": (("1", "North America", "0.0110"), ("44", "United Kingdom", "0.0150")),
}


@dataclass(frozen=True, slots=True)
class DemoSeeded:
    customer: Account
    carriers: tuple[RoutingGateway, ...]
    rates: int


def is_seeded(store: Store) -> bool:
    admin = store.admin(operator=DEMO_OPERATOR)
    return any(a.code == DEMO_CUSTOMER for a in admin.list(Account))


def is_empty(store: Store) -> bool:
    """No account and no gateway: a store nobody configured yet."""
    admin = store.admin(operator=DEMO_OPERATOR)
    return not admin.list(Account) and not admin.list(RoutingGateway) and not admin.list(MappingGateway)


def seed_demo(
    store: Store, *, carrier_ports: tuple[int, int] = DEMO_CARRIER_PORTS, host: str = "127.0.0.1"
) -> DemoSeeded:
    """Create the demo records (see the module doc), all in one transaction: a name already
    taken (ConflictError) leaves the store as it was."""
    with store.db.transaction():
        return _seed(store, carrier_ports, host)


def _seed(store: Store, carrier_ports: tuple[int, int], host: str) -> DemoSeeded:
    admin = store.admin(operator=DEMO_OPERATOR)
    retail = admin.create(RateGroup("demo-retail", memo="demo: what the customer pays"))
    rates = [
        Rate(
            retail.id,
            prefix,
            destination=name,
            first_time_rate=Decimal(price),
            first_time_duration=first,
            billing_rate=Decimal(price),
            billing_cycle=cycle,
        )
        for prefix, name, first, price, cycle in _RETAIL
    ]
    carriers: list[RoutingGateway] = []
    vendor_groups: dict[str, RateGroup] = {}
    for name in DEMO_CARRIERS:
        group = admin.create(RateGroup(f"demo-{name}", memo=f"demo: what we pay {name}"))
        vendor_groups[name] = group
        rates += [
            Rate(
                group.id,
                prefix,
                destination=dest,
                first_time_rate=Decimal(price),
                first_time_duration=1,
                billing_rate=Decimal(price),
                billing_cycle=1,
            )
            for prefix, dest, price in _BUY[name]
        ]
    admin.add_rates(rates)
    customer = admin.create(
        Account(
            code=DEMO_CUSTOMER,
            name="Demo customer",
            rate_group_id=retail.id,
            balance=Decimal("10.00"),
            memo="demo",
        )
    )
    admin.create(
        MappingGateway(
            "demo-customer",
            customer.id,
            addresses=(host,),
            memo="demo: calls from this machine",
        )
    )
    for priority, (name, port) in enumerate(zip(DEMO_CARRIERS, carrier_ports, strict=True), start=1):
        vendor = admin.create(Account(code=name, name=f"Demo {name}", kind="vendor", billing="postpaid"))
        carriers.append(
            admin.create(
                RoutingGateway(
                    name,
                    host=host,
                    port=port,
                    priority=priority,
                    account_id=vendor.id,
                    rate_group_id=vendor_groups[name].id,
                    memo="demo carrier",
                )
            )
        )
    return DemoSeeded(customer, tuple(carriers), len(rates))
