"""System parameters, named as VOS3000 names them (SS_* softswitch, SERVER_* management).

Each parameter has a type, a default and a check; a configuration file or the admin API sets
them by name, and a wrong name or value is refused with a message naming the key. The meaning of
each one, and our decisions where the reference notes are ambiguous, are in docs/sip.md and
docs/cli.md (the parameter list).

Every SS_* (and IVR_*) name of the reference's master parameter index is here, so a reference
configuration loads. Where the reference gives one parameter two names (``SS_MEDIA_PROXY_MODE``
= ``SS_MEDIAPROXYMODE``, ``SS_MEDIA_CHECK_TIMEOUT`` = ``SS_RTP_TIMEOUT``,
``SS_MEDIA_PROXY_PORT_RANGE`` = the START/END pair) both are accepted and resolve onto the one
this code reads (:data:`ALIASES`). Parameters of features this softswitch does not have (H.323,
IVR, the balance prompt) are accepted and checked but change nothing;
:data:`UNUSED` lists them.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal


class ParameterError(ValueError):
    """A parameter name or value is not acceptable; the message names the key."""


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    default: object
    doc: str
    parse: Callable[[object], object]


def _int(lo: int, hi: int) -> Callable[[object], object]:
    def parse(value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"expected an integer in {lo}..{hi}")
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"expected an integer in {lo}..{hi}") from None
        if not lo <= number <= hi:
            raise ValueError(f"{number} is outside {lo}..{hi}")
        return number

    return parse


def _bool(value: object) -> object:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("on", "true", "yes", "1"):
        return True
    if text in ("off", "false", "no", "0"):
        return False
    raise ValueError("expected On or Off")


def _text(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("expected text")
    return value


def _intervals(value: object) -> object:
    """``0.5,1,2,4`` → (0.5, 1.0, 2.0, 4.0): every interval positive, at least one."""
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    try:
        out = tuple(float(str(v).strip()) for v in items)
    except ValueError:
        raise ValueError("expected comma-separated seconds, e.g. 0.5,1,2,4") from None
    if not out or any(not 0 < v <= 3600 for v in out):
        raise ValueError("every interval must be a positive number of seconds (at most 3600)")
    return out


def _optional_limit(value: object) -> object:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    return _int(1, 1000)(value)


def _port_range(value: object) -> object:
    """``10000,39999`` (or a two-item list) → (10000, 39999)."""
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    try:
        low, high = (int(str(v).strip()) for v in items)
    except ValueError:
        raise ValueError("expected two ports LOW,HIGH, e.g. 10000,39999") from None
    if not 1024 <= low < high <= 65535:
        raise ValueError(f"{low},{high}: expected 1024 <= LOW < HIGH <= 65535")
    return (low, high)


def _choice_int(*allowed: int) -> Callable[[object], object]:
    def parse(value: object) -> object:
        if isinstance(value, bool) or not str(value).strip().isdigit() or int(str(value)) not in allowed:
            raise ValueError(f"expected one of {', '.join(map(str, allowed))}")
        return int(str(value))

    return parse


def _choice(*names: str) -> Callable[[object], object]:
    """One of ``names``, by name or by its position (VOS3000 stores modes as numbers)."""

    def parse(value: object) -> object:
        text = str(value).strip().lower()
        if text.isdigit() and int(text) < len(names):
            return names[int(text)]
        if text not in names:
            raise ValueError(f"expected one of {', '.join(names)}")
        return text

    return parse


_PARAMETERS = (
    # SIP signalling timers (reference §5); 0 is refused: the reference warns it misbehaves
    Parameter("SS_SIP_TIMEOUT_INVITE", 10, "seconds to wait for any response to INVITE", _int(1, 600)),
    Parameter("SS_SIP_TIMEOUT_TRYING", 20, "seconds to wait for a provisional after 100", _int(1, 600)),
    Parameter("SS_SIP_TIMEOUT_RINGING", 120, "seconds to wait for the answer after 180", _int(1, 3600)),
    Parameter("SS_SIP_TIMEOUT_SESSION_PROGRESS", 20, "seconds to wait after 183 without SDP", _int(1, 3600)),
    Parameter(
        "SS_SIP_TIMEOUT_SESSION_PROGRESS_SDP", 120, "seconds to wait after 183 with SDP", _int(1, 3600)
    ),
    Parameter("SS_SIP_STOP_SWITCH_AFTER_SDP", True, "no failover once SDP was received", _bool),
    Parameter(
        "SS_SIP_RESEND_INTERVAL",
        (0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0),
        "SIP retransmission intervals over UDP, seconds",
        _intervals,
    ),
    # session timers (reference §1.1)
    Parameter("SS_SIP_SESSION_TTL", 600, "session-timer interval, seconds", _int(90, 86400)),
    Parameter("SS_SIP_SESSION_UPDATE_SEGMENT", 2, "refresh every TTL/segment", _int(2, 10)),
    Parameter("SS_SIP_SESSION_TIMEOUT_EARLY_HANGUP", 0, "hang up this early before expiry", _int(0, 3600)),
    Parameter(
        "SS_SIP_NO_TIMER_REINVITE_INTERVAL",
        7200,
        "max call time, no session timer (0 off)",
        _int(0, 864000),
    ),
    # NAT keep-alive (reference §1.2)
    Parameter("SS_SIP_NAT_KEEP_ALIVE_MESSAGE", "HELLO", "keep-alive payload; empty disables", _text),
    Parameter("SS_SIP_NAT_KEEP_ALIVE_PERIOD", 30, "seconds between keep-alives", _int(10, 86400)),
    Parameter("SS_SIP_NAT_KEEP_ALIVE_SEND_INTERVAL", 500, "ms between keep-alive batches", _int(10, 60000)),
    Parameter("SS_SIP_NAT_KEEP_ALIVE_SEND_ONE_TIME", 3000, "keep-alives per batch", _int(1, 1000000)),
    # gateway switching (reference §3.4)
    Parameter("SS_GATEWAY_SWITCH_LIMIT", None, "gateways tried per call (None: all)", _optional_limit),
    Parameter(
        "SS_GATEWAY_SWITCH_STOP_AFTER_RTP_START",
        True,
        "no failover once the carrier's early RTP reached the media engine",
        _bool,
    ),
    Parameter("SS_GATEWAY_SWITCH_STOP_AFTER_USER_BUSY", True, "no failover on busy (486/600)", _bool),
    Parameter("SS_GATEWAY_SWITCH_UNTIL_CONNECT", False, "fail over even after ringing", _bool),
    Parameter(
        "SS_REDIRECT_OFFLINE_PHONE_TO_GATEWAY",
        False,
        "route calls to an unregistered phone through the gateways",
        _bool,
    ),
    # gateway sorting (reference §3.2-3.3, part 2 §D.4); docs/routing.md has the order
    Parameter("SS_GATEWAY_ASR_CALCULATE", False, "ASR per routing gateway, sorted on", _bool),
    Parameter("SS_GATEWAY_ASR_RESERVE_TIME", 600, "ASR window, seconds", _int(300, 86400)),
    Parameter("SS_GATEWAY_ASR_RESERVE_SEPARATE", 10, "segments of the ASR window", _int(5, 24)),
    Parameter("SS_GATEWAY_ACD_CALCULATE", False, "ACD per routing gateway, sorted on", _bool),
    Parameter("SS_GATEWAY_ACD_RESERVE_TIME", 600, "ACD window, seconds", _int(300, 86400)),
    Parameter("SS_GATEWAY_ACD_RESERVE_SEPARATE", 10, "segments of the ACD window", _int(5, 24)),
    Parameter(
        "SS_GATEWAYASRROUTESORTCONFIG",
        "before line usage",
        "where ASR sorting goes: before line usage, before gateway id",
        _choice("before line usage", "before gateway id"),
    ),
    Parameter(
        "SS_GATEWAYFEERATEROUTESORTCONFIG",
        "before line usage",
        "where cost sorting goes: before line usage, before gateway id, off",
        _choice("before line usage", "before gateway id", "off"),
    ),
    Parameter("SS_GATEWAY_FEE_RATE_ROUTE_BEFORE_ASR", False, "cost sorting before ASR sorting", _bool),
    # ours (the reference names these sub-settings of ASR sorting, without names or defaults)
    Parameter("SS_GATEWAY_ASR_MIN_CALLS", 10, "attempts in the window before ASR counts", _int(0, 1000000)),
    Parameter("SS_GATEWAY_ASR_THRESHOLD", 0, "ASR percent below which a gateway is demoted", _int(0, 100)),
    Parameter("SS_GATEWAY_NO_LOSS_ROUTE", False, "skip carriers dearer than the customer's rate", _bool),
    Parameter("SS_MAX_CALL_DURATION", 0, "longest call, seconds (0: no switch-wide limit)", _int(0, 864000)),
    # debug trace (reference §2.3): two files per kind, each up to this size
    Parameter("SS_TRACE_CALL_FILE_SIZE", 16, "call trace file size, MB", _int(16, 2048)),
    Parameter("SS_TRACE_REGISTER_FILE_SIZE", 16, "registration trace file size, MB", _int(16, 2048)),
    # caller number pools: 0 random, 1 poll (softswitch.conf in VOS3000)
    Parameter("FORWARD_SIGNAL_REWRITE_SEQUENCE", 1, "caller pool order: 0 random, 1 in turn", _int(0, 1)),
    # media (security-quality reference §B)
    Parameter(
        "SS_MEDIAPROXYMODE",
        "on",
        "media proxy: off, on, auto, must-on",
        _choice("off", "on", "auto", "must-on"),
    ),
    Parameter("SS_RTP_TIMEOUT", 30, "seconds of no RTP before a call is ended", _int(0, 3600)),
    Parameter("SS_QOS_SIGNAL", 24, "DSCP of SIP packets", _int(0, 63)),
    Parameter("SS_QOS_RTP", 46, "DSCP of RTP packets", _int(0, 63)),
    Parameter("SS_MEDIAPROXYPORT_START", 10000, "first media port", _int(1024, 65534)),
    Parameter("SS_MEDIAPROXYPORT_END", 60000, "last media port", _int(1025, 65535)),
    # the reference's other names for the three above (master index #42-44)
    Parameter("SS_MEDIA_PROXY_MODE", "on", "= SS_MEDIAPROXYMODE", _choice("off", "on", "auto", "must-on")),
    Parameter("SS_MEDIA_PROXY_PORT_RANGE", (10000, 60000), "= SS_MEDIAPROXYPORT_START,END", _port_range),
    Parameter("SS_MEDIA_CHECK_TIMEOUT", 30, "= SS_RTP_TIMEOUT, seconds", _int(0, 3600)),
    # jitter buffer and echo canceller of decoded legs (security-quality reference §B; docs/decisions.md)
    Parameter("SS_JITTERBUFFER_MODE", "adaptive", "0 fixed, 1 adaptive", _choice("fixed", "adaptive")),
    Parameter("SS_JITTERBUFFER_MIN", 20, "smallest buffer delay, ms", _int(0, 1000)),
    Parameter("SS_JITTERBUFFER_MAX", 200, "largest buffer delay, ms", _int(0, 1000)),
    Parameter("SS_JITTERBUFFER_DEFAULT", 60, "starting (adaptive) or fixed delay, ms", _int(0, 1000)),
    Parameter("SS_ECHOCANCEL", True, "line echo canceller on decoded legs", _bool),
    Parameter("SS_ECHOCANCELTAIL", 64, "echo tail, ms: 64 or 128 (256 refused)", _choice_int(64, 128)),
    Parameter("SS_VOICEGAIN", 0, "voice gain toward both parties, dB (not on relayed G.729)", _int(-10, 10)),
    Parameter("SS_COMFORTNOISE", True, "comfort noise while a transcoded party is quiet", _bool),
    # debug trace (reference §2.3)
    Parameter("SS_TRACE_FILE_LENGTH", 40960, "softswitch debug file size, KB", _int(1024, 4194304)),
    Parameter(
        "SS_TRACE_MASK", "error", "debug file: ERROR (errors, warnings) or DEBUG", _choice("error", "debug")
    ),
    Parameter("SS_TRACETOFILE", True, "the node's log also to the debug file (trace directory)", _bool),
    # gateway quality window (reference §4.1.1)
    Parameter("SS_GATEWAY_QUALITY_RESERVE_TIME", 600, "quality window, seconds", _int(300, 86400)),
    Parameter("SS_GATEWAY_QUALITY_RESERVE_SEPARATE", 10, "segments of the quality window", _int(5, 24)),
    # billing features we do not have yet (accepted only)
    Parameter(
        "SS_ACCOUNT_INDICATION_METHOD",
        "off",
        "low-balance prompt: Off, Prompt balance, Prompt duration",
        _choice("off", "prompt balance", "prompt duration"),
    ),
    # H.323 (no H.323 here: accepted so reference configurations load)
    Parameter("SS_H323_TIMEOUT_SETUP", 5, "H.323 Setup to Call Proceeding, seconds", _int(1, 600)),
    Parameter("SS_H323_TIMEOUT_CALLPROCEEDING", 20, "H.323 Call Proceeding to Alerting, s", _int(1, 600)),
    Parameter("SS_H323_TIMEOUT_ALERTING", 120, "H.323 Alerting to Connect, seconds", _int(1, 3600)),
    Parameter("SS_H323_TIMEOUT_CALLPROCEEDING_OLC", 20, "H.323 Call Proceeding to OLC, s", _int(1, 600)),
    Parameter("SS_H323_STOP_SWITCH_AFTER_OLC", False, "H.323: no failover after OLC", _bool),
    # audio service / IVR (reference §7.2; no IVR here: accepted only)
    Parameter("IVR_RINGING_TIMEOUT", 120, "IVR wait for answer, seconds", _int(1, 3600)),
    Parameter("IVR_SETUP_TIMEOUT", 20, "IVR wait for the first response, seconds", _int(1, 600)),
    Parameter("IVR_MEDIA_CHECK_TIMEOUT", 2, "IVR no-media hang-up, minutes", _int(0, 600)),
    Parameter("IVR_CODEC_PRIORITY", "g729a,g729,g723,g711a,g711u", "IVR codec preference", _text),
)

#: Second names the reference gives a parameter, and the name this code reads. A port range
#: maps onto two names (START, END).
ALIASES: dict[str, tuple[str, ...]] = {
    "SS_MEDIA_PROXY_MODE": ("SS_MEDIAPROXYMODE",),
    "SS_MEDIA_CHECK_TIMEOUT": ("SS_RTP_TIMEOUT",),
    "SS_MEDIA_PROXY_PORT_RANGE": ("SS_MEDIAPROXYPORT_START", "SS_MEDIAPROXYPORT_END"),
}

#: Accepted and checked, but no feature of this softswitch reads them (yet).
UNUSED = frozenset(
    {
        "SS_GATEWAY_QUALITY_RESERVE_TIME",
        "SS_GATEWAY_QUALITY_RESERVE_SEPARATE",
        "SS_ACCOUNT_INDICATION_METHOD",
        "SS_H323_TIMEOUT_SETUP",
        "SS_H323_TIMEOUT_CALLPROCEEDING",
        "SS_H323_TIMEOUT_ALERTING",
        "SS_H323_TIMEOUT_CALLPROCEEDING_OLC",
        "SS_H323_STOP_SWITCH_AFTER_OLC",
        "IVR_RINGING_TIMEOUT",
        "IVR_SETUP_TIMEOUT",
        "IVR_MEDIA_CHECK_TIMEOUT",
        "IVR_CODEC_PRIORITY",
    }
)

PARAMETERS: dict[str, Parameter] = {p.name: p for p in _PARAMETERS}

# -- when a stored change takes effect ------------------------------------------------------
#
# A change stored while nodes run (``Store.set_parameter``: the REST API, ``softswitch
# parameters set``) reaches a node in one of four ways, decided by where the code reads the
# parameter (docs/routing.md, "Parameters", has the table; tests/test_parameter_classes.py
# checks these sets against the reads in signaling/):
#
# - ``reload``: read per call, per transaction or per route from the router's snapshot or the
#   node's parameters, which follow the store at the router's next reload (2 s): the next call
#   takes it, a running call keeps its own (signaling/b2bua/settings.py ``GROUPS``, the router).
# - ``restart``: read once, when the node starts: the in-process media engine is built with them
#   (signaling/run.py) and the trace files are sized with them (the node's tracer). The
#   reference asks a restart for these (security-quality-timerouting-failover.md §B.6 "Changes
#   apply after a restart", §B.8, §B.10, behaviour 38); a stored change is kept and the node's
#   next start uses it. (A separate media node, ``[media] engine = "ng"``, has its own command
#   line: the store does not reach it.)
# - ``immediate``: SERVER_* parameters the store, the API or the web manager read at each use
#   (the next CDR query, payment, web request); no node involved.
# - ``never``: accepted and checked, but nothing in this softswitch reads them (:data:`UNUSED`,
#   :data:`SERVER_UNUSED`).

Effect = Literal["reload", "restart", "immediate", "never"]
RELOAD: Final = "reload"
RESTART: Final = "restart"
IMMEDIATE: Final = "immediate"
NEVER: Final = "never"

#: SS_* read per call or per reload (the router's snapshot, ``Node.parameters``, the node
#: settings' ``GROUPS``).
LIVE = frozenset(
    {
        "SS_SIP_TIMEOUT_INVITE",
        "SS_SIP_TIMEOUT_TRYING",
        "SS_SIP_TIMEOUT_RINGING",
        "SS_SIP_TIMEOUT_SESSION_PROGRESS",
        "SS_SIP_TIMEOUT_SESSION_PROGRESS_SDP",
        "SS_SIP_STOP_SWITCH_AFTER_SDP",
        "SS_GATEWAY_SWITCH_STOP_AFTER_RTP_START",
        "SS_SIP_RESEND_INTERVAL",
        "SS_SIP_SESSION_TTL",
        "SS_SIP_SESSION_UPDATE_SEGMENT",
        "SS_SIP_SESSION_TIMEOUT_EARLY_HANGUP",
        "SS_SIP_NO_TIMER_REINVITE_INTERVAL",
        "SS_SIP_NAT_KEEP_ALIVE_MESSAGE",
        "SS_SIP_NAT_KEEP_ALIVE_PERIOD",
        "SS_SIP_NAT_KEEP_ALIVE_SEND_INTERVAL",
        "SS_SIP_NAT_KEEP_ALIVE_SEND_ONE_TIME",
        "SS_GATEWAY_SWITCH_LIMIT",
        "SS_GATEWAY_SWITCH_STOP_AFTER_USER_BUSY",
        "SS_GATEWAY_SWITCH_UNTIL_CONNECT",
        "SS_REDIRECT_OFFLINE_PHONE_TO_GATEWAY",
        "SS_GATEWAY_ASR_CALCULATE",
        "SS_GATEWAY_ASR_RESERVE_TIME",
        "SS_GATEWAY_ASR_RESERVE_SEPARATE",
        "SS_GATEWAY_ACD_CALCULATE",
        "SS_GATEWAY_ACD_RESERVE_TIME",
        "SS_GATEWAY_ACD_RESERVE_SEPARATE",
        "SS_GATEWAYASRROUTESORTCONFIG",
        "SS_GATEWAYFEERATEROUTESORTCONFIG",
        "SS_GATEWAY_FEE_RATE_ROUTE_BEFORE_ASR",
        "SS_GATEWAY_ASR_MIN_CALLS",
        "SS_GATEWAY_ASR_THRESHOLD",
        "SS_GATEWAY_NO_LOSS_ROUTE",
        "SS_MAX_CALL_DURATION",
        "FORWARD_SIGNAL_REWRITE_SEQUENCE",
        "SS_MEDIAPROXYMODE",
        "SS_MEDIA_PROXY_MODE",
        "SS_QOS_SIGNAL",
        "SS_VOICEGAIN",
        "SS_COMFORTNOISE",  # the call's, at each media offer/answer (signaling/b2bua/inputs.py)
    }
)

#: SS_* read when the node starts only: the in-process media engine's settings and the trace
#: file sizes.
AT_RESTART = frozenset(
    {
        "SS_MEDIAPROXYPORT_START",
        "SS_MEDIAPROXYPORT_END",
        "SS_MEDIA_PROXY_PORT_RANGE",
        "SS_RTP_TIMEOUT",
        "SS_MEDIA_CHECK_TIMEOUT",
        "SS_QOS_RTP",
        "SS_JITTERBUFFER_MODE",
        "SS_JITTERBUFFER_MIN",
        "SS_JITTERBUFFER_MAX",
        "SS_JITTERBUFFER_DEFAULT",
        "SS_ECHOCANCEL",
        "SS_ECHOCANCELTAIL",
        "SS_TRACE_CALL_FILE_SIZE",
        "SS_TRACE_FILE_LENGTH",
        "SS_TRACE_MASK",
        "SS_TRACETOFILE",
        "SS_TRACE_REGISTER_FILE_SIZE",
    }
)

#: SERVER_* (signaling/store/parameters.py) by when a stored change takes effect: billing's read
#: through the router's snapshot (at its reload), the rest by the store, API or web manager at
#: each use, or by nothing.
SERVER_LIVE = frozenset(
    {
        "SERVER_BILLING_FEE_PRECISION",
        "SERVER_BILLING_HOLD_TIME_PRECISION",
        "SERVER_WORK_CALENDAR_ENABLED",
        "SERVER_PERIOD_RATE_ENABLED",
    }
)
SERVER_AT_ONCE = frozenset(
    {
        "SERVER_PAY_DELAY_CUSTOMER_EXPIRE_DAY",
        "SERVER_PASSWORD_LENGTH",
        "SERVER_CDR_RETENTION_DAYS",  # each node's hourly retention pass reads them
        "SERVER_PAYMENT_RETENTION_DAYS",
        "SERVER_ALARM_EMAIL",  # read at each alarm round with events (signaling/observe/mail.py)
        "SERVER_ALARM_ENABLE_EMAIL",
        "SERVER_QUERY_ONE_PAGE_SIZE",
        "SERVER_QUERY_CDR_MAX_DAY_INTERVAL",
        "SERVER_WEB_ACCESS_CONTROL",
        "SERVER_WEB_ACCESS_LIST",
    }
)
SERVER_UNUSED: frozenset[str] = frozenset()

_CLASSES: tuple[tuple[Effect, frozenset[str]], ...] = (
    (RELOAD, LIVE | SERVER_LIVE),
    (RESTART, AT_RESTART),
    (IMMEDIATE, SERVER_AT_ONCE),
    (NEVER, UNUSED | SERVER_UNUSED),
)

#: Every parameter name (SS_*, IVR_*, SERVER_*) → when a stored change of it takes effect.
TAKES_EFFECT: dict[str, Effect] = {name: kind for kind, names in _CLASSES for name in names}

#: What an operator is told, by class, after setting or resetting a parameter.
EFFECT_NOTE: dict[Effect, str] = {
    RELOAD: "running nodes take it at their next reload",
    RESTART: "it takes effect at each node's next restart: read at start only",
    IMMEDIATE: "in effect at its next use (the next request; retention: each node's next hourly pass)",
    NEVER: "it changes nothing in this softswitch: accepted only",
}

#: The class in a listing's column (``softswitch parameters``, ``parameters stored``).
EFFECT_MARK: dict[Effect, str] = {
    RELOAD: "next reload",
    RESTART: "restart required",
    IMMEDIATE: "next use",
    NEVER: "never (accepted only)",
}


def takes_effect(name: str) -> Effect:
    """When a stored change of ``name`` takes effect: ``reload``, ``restart``, ``immediate`` or
    ``never`` (ParameterError for a name of neither table)."""
    kind = TAKES_EFFECT.get(name)
    if kind is None:
        raise ParameterError(f"{name}: unknown parameter")
    return kind


def check_name(name: str, where: str = "") -> Parameter:
    param = PARAMETERS.get(name)
    if param is None:
        close = difflib.get_close_matches(name, PARAMETERS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ParameterError(f"{where}{name}: unknown parameter{hint}")
    return param


def defaults() -> dict[str, Any]:
    return {p.name: p.default for p in _PARAMETERS if p.name not in ALIASES}


def assign(out: dict[str, Any], name: str, value: object) -> None:
    """Put a parsed ``value`` of ``name`` into ``out`` under the name(s) this code reads."""
    targets = ALIASES.get(name)
    if targets is None:
        out[name] = value
    elif len(targets) == 1:
        out[targets[0]] = value
    else:
        assert isinstance(value, tuple)
        out.update(zip(targets, value, strict=True))


def resolve(values: Mapping[str, object], where: str = "") -> dict[str, Any]:
    """Defaults overlaid with ``values``; every name and value checked, aliases resolved."""
    out = defaults()
    given: dict[str, str] = {}
    for name, value in values.items():
        param = check_name(name, where)
        for target in ALIASES.get(name, (name,)):
            if target in given:
                raise ParameterError(
                    f"{where}{name}: the same parameter as {given[target]}; give only one of them"
                )
            given[target] = name
        try:
            assign(out, name, param.parse(value))
        except ValueError as exc:
            raise ParameterError(f"{where}{name}: {exc}") from None
    check_consistent(out, where)
    return out


def check_consistent(out: Mapping[str, Any], where: str = "") -> None:
    """Rules between parameters (each one already checked alone)."""
    if out["SS_MEDIAPROXYPORT_START"] >= out["SS_MEDIAPROXYPORT_END"]:
        raise ParameterError(f"{where}SS_MEDIAPROXYPORT_START: must be below SS_MEDIAPROXYPORT_END")
    low, default, high = (out[f"SS_JITTERBUFFER_{k}"] for k in ("MIN", "DEFAULT", "MAX"))
    if not low <= default <= high:
        raise ParameterError(
            f"{where}SS_JITTERBUFFER_DEFAULT: {default} ms must lie within SS_JITTERBUFFER_MIN {low} "
            f"and SS_JITTERBUFFER_MAX {high}"
        )
