"""System parameters stored in the database (overrides of the defaults), checked by name.

``SS_*`` names are the softswitch parameters of :mod:`signaling.params` (checked by its parsers).
The ``SERVER_*`` management parameters, and the two the store itself uses, are defined here.
Values are stored as text exactly as given (after the check), so the node's parameter resolver
reads them like a configuration file's.
"""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from signaling import params
from signaling.store.errors import ValidationError


@dataclass(frozen=True, slots=True)
class ServerParameter:
    name: str
    default: object
    doc: str
    parse: Callable[[str], object]


def _int(low: int, high: int) -> Callable[[str], object]:
    def parse(text: str) -> object:
        if not text.strip().lstrip("-").isdigit():
            raise ValueError(f"expected a whole number in {low}..{high}")
        number = int(text)
        if not low <= number <= high:
            raise ValueError(f"{number} is outside {low}..{high}")
        return number

    return parse


def _email(text: str) -> object:
    if text and (text.count("@") != 1 or any(c.isspace() for c in text) or text.startswith("@")):
        raise ValueError(f"{text!r} is not an e-mail address")
    return text


def _bool(text: str) -> object:
    lowered = text.strip().lower()
    if lowered in ("1", "on", "true", "yes"):
        return True
    if lowered in ("0", "off", "false", "no"):
        return False
    raise ValueError("expected On or Off (1 or 0)")


def _ip_list(text: str) -> object:
    """Comma-separated IP addresses and CIDR ranges (Web Access Control)."""
    networks = []
    for raw in text.replace("\n", ",").replace(" ", ",").split(","):
        entry = raw.strip()
        if entry:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR range") from None
    return tuple(networks)


SERVER_PARAMETERS: dict[str, ServerParameter] = {
    p.name: p
    for p in (
        ServerParameter(
            "SERVER_PAY_DELAY_CUSTOMER_EXPIRE_DAY",
            365,
            "days a payment extends a customer account's expiry (0: no extension)",
            _int(0, 36500),
        ),
        ServerParameter("SERVER_WORK_CALENDAR_ENABLED", False, "work calendars decide working time", _bool),
        ServerParameter(
            "SERVER_PERIOD_RATE_ENABLED", False, "period rates switch rate tables by time", _bool
        ),
        ServerParameter(
            "SERVER_BILLING_FEE_PRECISION", 7, "decimal places of charges (at most 7)", _int(0, 7)
        ),
        ServerParameter(
            "SERVER_BILLING_HOLD_TIME_PRECISION",
            1000,
            "hold-time rounding step, milliseconds",
            _int(1, 3_600_000),
        ),
        ServerParameter(
            "SERVER_QUERY_ONE_PAGE_SIZE", 10000, "records per CDR query page", _int(1, 1_000_000)
        ),
        ServerParameter(
            "SERVER_QUERY_CDR_MAX_DAY_INTERVAL", 31, "days one CDR query may span", _int(1, 3660)
        ),
        ServerParameter(
            "SERVER_PASSWORD_LENGTH", 8, "shortest password a user may set (8 at least)", _int(8, 128)
        ),
        ServerParameter("SERVER_ALARM_EMAIL", "", "where alarm e-mails go (empty: nowhere)", _email),
        ServerParameter("SERVER_ALARM_ENABLE_EMAIL", False, "send alarms by e-mail", _bool),
        ServerParameter(
            "SERVER_CDR_RETENTION_DAYS", 0, "days CDRs are kept (0: forever); ours", _int(0, 36500)
        ),
        ServerParameter(
            "SERVER_PAYMENT_RETENTION_DAYS",
            0,
            "days payment records are kept (0: forever); ours",
            _int(0, 36500),
        ),
        ServerParameter(
            "SERVER_WEB_ACCESS_CONTROL",
            False,
            "Web Access Control: serve the web manager and API only to SERVER_WEB_ACCESS_LIST",
            _bool,
        ),
        ServerParameter(
            "SERVER_WEB_ACCESS_LIST",
            (),
            "Web Access Control whitelist: IP addresses and CIDR ranges, comma-separated",
            _ip_list,
        ),
        ServerParameter(
            "FORWARD_SIGNAL_REWRITE_SEQUENCE",
            1,  # the node's default too (signaling/params.py, docs/b2bua.md): in turn
            "caller number pool order: 0 random, 1 round-robin",
            _int(0, 1),
        ),
    )
}


def check(name: str, value: object) -> str:
    """The text to store for ``name = value``; ValidationError naming the parameter if wrong."""
    if isinstance(value, bool):
        text = "1" if value else "0"
    elif isinstance(value, int | str):
        text = str(value)
    else:
        raise ValidationError(name, "expected text, a whole number or On/Off")
    server = SERVER_PARAMETERS.get(name)
    try:
        if server is not None:
            server.parse(text)
        else:
            param = params.check_name(name)
            param.parse(text)
    except params.ParameterError as exc:
        raise ValidationError(name, str(exc).split(": ", 1)[-1]) from None
    except ValueError as exc:
        raise ValidationError(name, str(exc)) from None
    return text


def parse_server(name: str, value: object, where: str = "") -> object:
    """A SERVER_* value from a configuration file (text, number or boolean), typed; a wrong
    name or value raises :class:`signaling.params.ParameterError` naming ``where + name``."""
    param = SERVER_PARAMETERS.get(name)
    if param is None:
        close = difflib.get_close_matches(name, [*SERVER_PARAMETERS, *params.PARAMETERS], n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise params.ParameterError(f"{where}{name}: unknown parameter{hint}")
    if isinstance(value, bool):
        text = "1" if value else "0"
    elif isinstance(value, int | str):
        text = str(value)
    else:
        raise params.ParameterError(f"{where}{name}: expected text, a whole number or On/Off")
    try:
        return param.parse(text)
    except ValueError as exc:
        raise params.ParameterError(f"{where}{name}: {exc}") from None


def server_value(name: str, stored: str | None) -> object:
    """The typed value of a SERVER_* parameter: ``stored`` text, else its default."""
    param = SERVER_PARAMETERS.get(name)
    if param is None:
        raise ValidationError(name, "not a SERVER_* parameter of the store")
    return param.default if stored is None else param.parse(stored)


@dataclass(frozen=True, slots=True)
class ParameterState:
    """One parameter as an operator sees it: its stored override (text, None when the default
    applies), its default, its meaning and when a stored change takes effect."""

    name: str
    stored: str | None
    default: object
    doc: str
    takes_effect: params.Effect


def names() -> list[str]:
    """Every SS_*, IVR_* and SERVER_* parameter name, sorted."""
    return sorted({*params.PARAMETERS, *SERVER_PARAMETERS})


def describe(name: str, stored: dict[str, str]) -> ParameterState | None:
    """``name`` with its override from ``stored`` (the store's :meth:`parameters`); None for a
    name of neither table. A default that is not plain text, a number or a boolean (a port
    range) is given as text."""
    server = SERVER_PARAMETERS.get(name)
    if server is not None:
        default, doc = server.default, server.doc
    else:
        found = params.PARAMETERS.get(name)
        if found is None:
            return None
        default, doc = found.default, found.doc
    if not isinstance(default, str | int | bool | float | None):
        default = str(default)
    return ParameterState(name, stored.get(name), default, doc, params.TAKES_EFFECT[name])
