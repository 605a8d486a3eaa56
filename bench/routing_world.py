"""A wholesale operator's configuration at scale, for bench/routing.py and bench/cdr.py.

The deck is made the way real A-Z decks are: about 230 country codes, each split into
destinations (an operator or an area: the country code and 1-3 more digits) that each have one
tariff, and the rate prefixes under a destination (number ranges, 5-10 digits) sharing its
tariff. The customer deck holds ``rates`` prefixes; each of ``vendors`` vendor accounts has a
coarser deck (country codes and destinations, ``vendor_deck`` prefixes) at 50-90 % of the
customer's price; ``gateways`` routing gateways, spread over the vendors, each serve 1-4
prefixes (mostly country codes, some destinations), with random priorities and weights, and
some with a line limit, a tech prefix or a dial plan. ``customers`` mapping gateways (one
account each, all on the customer deck) call from their own addresses; every other one sends
numbers with the international prefix 00, which its dial plan strips.

Rates are written with one bulk statement per chunk (``Tx.executemany``), each value encoded
by the store's own codec from a validated :class:`~signaling.store.Rate` record per
destination, so the rows are exactly what ``Admin.add_rates`` would have written, without its
two checking queries per row.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal

from signaling.store import Account, MappingGateway, Rate, RateGroup, RoutingGateway, Store, codec, table

#: Country codes: the real one-digit zones, and two- and three-digit codes drawn from the
#: ranges the ITU assigns them in (a realistic mix of lengths, not the exact list).
ONE_DIGIT = ("1", "7")
TWO_DIGIT_RANGES = ("2", "3", "4", "5", "6", "8", "9")
#: How many three-digit codes share each two-digit zone.
THREE_DIGIT_PER_ZONE = 30


@dataclass(slots=True)
class Destination:
    prefix: str
    rate: Rate


@dataclass(slots=True)
class World:
    retail_id: int = 0
    #: (source IP, sends 00 before the number)
    customers: list[tuple[str, bool]] = field(default_factory=list)
    #: Every customer rate prefix (numbers are drawn under them).
    prefixes: list[str] = field(default_factory=list)
    rate_rows: int = 0


def country_codes(rng: random.Random) -> list[str]:
    codes = list(ONE_DIGIT)
    for zone in TWO_DIGIT_RANGES:
        twos = rng.sample([f"{zone}{d}" for d in range(10)], 5)
        codes.extend(twos)
        rest = sorted({f"{zone}{d}" for d in range(10)} - set(twos))
        threes = [f"{two}{d}" for two in rest for d in range(10)]
        codes.extend(rng.sample(threes, THREE_DIGIT_PER_ZONE))
    return codes


def _tariff(rng: random.Random, group_id: int, prefix: str, factor: Decimal) -> Rate:
    billing = (Decimal(rng.randint(10, 5000)) / Decimal(10000) * factor).quantize(Decimal("0.00001"))
    first_duration, cycle = rng.choice(((1, 1), (6, 6), (60, 60), (30, 6), (60, 6)))
    fee = Decimal(0) if rng.random() < 0.8 else Decimal("0.001")
    return Rate(
        group_id,
        prefix,
        destination=f"Destination {prefix}",
        first_time_rate=billing,
        first_time_duration=first_duration,
        billing_rate=billing,
        billing_cycle=cycle,
        connection_fee=fee,
    )


def _insert_rates(store: Store, rows: list[list[object]]) -> None:
    names = [c.name for c in table.columns(Rate)]
    sql = f"INSERT INTO rate ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"  # noqa: S608
    chunk = 50_000
    with store.db.transaction() as tx:
        for start in range(0, len(rows), chunk):
            tx.executemany(sql, rows[start : start + chunk])
        tx.execute("UPDATE config_version SET version = version + 1")


def _encoded(store: Store, rate: Rate) -> list[object]:
    rate.check()
    return [codec.encode(store.dialect, c.kind, getattr(rate, c.name)) for c in table.columns(Rate)]


def build(  # noqa: PLR0912, PLR0915 (the knobs of the deck, and one straight recipe)
    store: Store,
    *,
    seed: int = 2026,
    rates: int = 1_000_000,
    destinations_per_country: int = 24,
    vendors: int = 20,
    vendor_deck: int = 5_000,
    gateways: int = 1_000,
    customers: int = 100,
) -> World:
    rng = random.Random(seed)  # noqa: S311 (a reproducible deck, not a secret)
    admin = store.admin(operator="bench")
    world = World()
    world.retail_id = admin.create(RateGroup("retail")).id
    codes = country_codes(rng)
    # Destinations: each country's own code (a catch-all) plus operator/area codes under it.
    destinations: list[Destination] = []
    for cc in codes:
        destinations.append(Destination(cc, _tariff(rng, world.retail_id, cc, Decimal(1))))
        seen = {cc}
        for _ in range(destinations_per_country):
            prefix = (
                cc
                + str(rng.randint(1, 9))
                + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 2)))
            )
            if prefix not in seen:
                seen.add(prefix)
                destinations.append(Destination(prefix, _tariff(rng, world.retail_id, prefix, Decimal(1))))
    # Bigger zones carry more ranges (as +1, +7, +44, +86… do): weight by code shortness.
    weights = [4.0 / len(d.prefix) ** 2 for d in destinations]
    prefixes: dict[str, Destination] = {d.prefix: d for d in destinations}
    while len(prefixes) < rates:
        for dest in rng.choices(destinations, weights, k=min(200_000, rates - len(prefixes))):
            length = rng.randint(max(5, len(dest.prefix) + 1), 10)
            tail = "".join(rng.choices("0123456789", k=length - len(dest.prefix)))
            prefixes.setdefault(dest.prefix + tail, dest)
            if len(prefixes) >= rates:
                break
    template = {d.prefix: _encoded(store, d.rate) for d in destinations}
    prefix_column = [c.name for c in table.columns(Rate)].index("prefix")
    rows: list[list[object]] = []
    for prefix, dest in prefixes.items():
        row = list(template[dest.prefix])
        row[prefix_column] = prefix
        rows.append(row)
    # Vendor decks: country codes and destinations (coarser than the customer's), cheaper.
    code_set = set(codes)
    vendor_accounts: list[int] = []
    vendor_groups: list[int] = []
    for v in range(vendors):
        group_id = admin.create(RateGroup(f"vendor-{v}")).id
        vendor_groups.append(group_id)
        vendor_accounts.append(admin.create(Account(code=f"v{v}", kind="vendor", billing="postpaid")).id)
        extra = [d for d in destinations if d.prefix not in code_set]
        rng.shuffle(extra)
        chosen = [d for d in destinations if d.prefix in code_set] + extra
        for dest in chosen[:vendor_deck]:
            factor = Decimal(rng.randint(50, 90)) / Decimal(100)
            base = dest.rate
            rows.append(
                _encoded(
                    store,
                    Rate(
                        group_id,
                        dest.prefix,
                        destination=base.destination,
                        first_time_rate=(base.first_time_rate * factor).quantize(Decimal("0.0000001")),
                        first_time_duration=base.first_time_duration,
                        billing_rate=(base.billing_rate * factor).quantize(Decimal("0.0000001")),
                        billing_cycle=base.billing_cycle,
                    ),
                )
            )
    _insert_rates(store, rows)
    world.rate_rows = len(rows)
    world.prefixes = list(prefixes)
    # Routing gateways: mostly country codes (the shorter, the bigger the zone and the more
    # carriers serve it: a call to +1 has ~20 candidates, the average call ~10), some destinations.
    code_weights = [1.0 / len(c) for c in codes]
    dest_prefixes = [d.prefix for d in destinations if d.prefix not in code_set]
    for g in range(gateways):
        served: set[str] = set()
        for _ in range(rng.randint(1, 4)):
            served.add(
                rng.choices(codes, code_weights)[0] if rng.random() < 0.8 else rng.choice(dest_prefixes)
            )
        vendor = g % vendors
        options: dict[str, object] = {
            "host": f"198.51.{g // 250}.{g % 250 + 1}",
            "prefixes": tuple(sorted(served)),
            "priority": rng.randint(1, 5),
            "weight": rng.choice((25, 50, 75, 100)),
            "account_id": vendor_accounts[vendor],
            "rate_group_id": vendor_groups[vendor],
        }
        if rng.random() < 0.3:
            options["max_calls"] = rng.choice((30, 60, 120, 500))
        if rng.random() < 0.2:
            options["tech_prefix"] = f"{rng.randint(1000, 9999)}#"
        if rng.random() < 0.1:
            options["callee_dial_plan"] = "0*:$"  # a carrier wanting national format for one range
        admin.create(RoutingGateway(f"carrier-{g}", **options))  # type: ignore[arg-type]
    for c in range(customers):
        account = admin.create(
            Account(
                code=f"c{c}", rate_group_id=world.retail_id, balance=Decimal(1000), credit_limit=Decimal(0)
            )
        ).id
        ip = f"203.0.{c // 200}.{c % 200 + 1}"
        sends_00 = c % 2 == 1
        admin.create(
            MappingGateway(
                f"customer-{c}",
                account,
                addresses=(ip,),
                callee_dial_plan="00:" if sends_00 else "",
                max_calls=1000,
            )
        )
        world.customers.append((ip, sends_00))
    return world


def numbers(world: World, rng: random.Random, count: int) -> list[tuple[str, str]]:
    """``count`` calls (source IP, callee as sent): 95 % to a number under a rate prefix of the
    deck (11-13 digits, E.164 without +), 5 % to random digit strings (some match nothing)."""
    calls: list[tuple[str, str]] = []
    for _ in range(count):
        ip, sends_00 = rng.choice(world.customers)
        if rng.random() < 0.95:
            prefix = rng.choice(world.prefixes)
            length = max(len(prefix) + 1, rng.randint(11, 13))
            number = prefix + "".join(rng.choices("0123456789", k=length - len(prefix)))
        else:
            number = "".join(rng.choices("123456789", k=1)) + "".join(
                rng.choices("0123456789", k=rng.randint(7, 13))
            )
        calls.append((ip, "00" + number if sends_00 else number))
    return calls
