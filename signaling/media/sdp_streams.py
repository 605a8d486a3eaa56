"""The media streams (``m=`` sections) of an SDP body, read and edited as text, per offer.

The B2BUA plans one voice stream per call: the first *enabled* ``m=audio`` section (port not
0) of an offer is the call's voice; :mod:`signaling.media.sdp_codecs` reads and edits that one
section. What these helpers do around it (docs/b2bua.md "Streams"):

* :func:`one_audio_stream` — refuse every further enabled audio stream of an offer before it
  goes on, by setting its port to 0 (RFC 3264 §8.2: a stream is removed, or offered disabled,
  with port 0; the answerer then answers it with port 0, §6), so no audio stream ever crosses
  the switch unplanned. Video and other media are left as they are: the engine anchors every
  enabled section and relays those, unplanned (the gateways' codec lists are audio codecs).
* :func:`keep_disabled` — an answer's sections set back to port 0 where the offer it answers
  had port 0 (an answerer may not enable a stream offered disabled, RFC 3264 §6).
* :func:`restoring_offer` — the session description that puts a party back on the session in
  force before a re-offer we refused (docs/decisions.md "A re-offer's answer that does not
  fit"): the one it had, its origin version one above the last it saw (RFC 3264 §8), with as
  many ``m=`` lines as the last it saw (§8: never fewer).
* :func:`pad_sections` / :func:`trim_sections` — a party never sees fewer ``m=`` lines than it
  has seen (RFC 3264 §8): after a refused re-offer that added streams, the other party's later
  offers are padded to that count with disabled sections, and the answer cut back for them.
* :func:`media_key` — what of an SDP decides where and how media flows (per section: kind,
  port, protocol, first format, connection address, direction), to tell whether a party's new
  SDP changes its media or only its origin line.

Every other line passes through byte for byte, with the body's own line ending.
"""

from __future__ import annotations

import re

from signaling.media.sdp_codecs import _join, _split  # one way to cut an SDP into lines

__all__ = [
    "disabled_sections",
    "keep_disabled",
    "media_key",
    "one_audio_stream",
    "pad_sections",
    "restoring_offer",
    "section_count",
    "trim_sections",
    "version_above",
]

_DIRECTIONS = ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive")
#: an ``m=`` line with port 0 (one C-level search, so most answers are not parsed)
_DISABLED = re.compile(rb"^m=\S+ 0[ /]", re.MULTILINE)


def _m_indexes(lines: list[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if line.startswith("m=")]


def _port(m_line: str) -> str:
    fields = m_line.split(" ")
    return fields[1] if len(fields) > 1 else "0"


def _with_port(m_line: str, port: str) -> str:
    fields = m_line.split(" ")
    if len(fields) > 1:
        fields[1] = port
    return " ".join(fields)


def _enabled(m_line: str) -> bool:
    # "port/count" (RFC 4566) counts as its port
    return _port(m_line).split("/", 1)[0] not in ("0", "")


def section_count(sdp: bytes) -> int:
    """How many ``m=`` sections the SDP has."""
    return sdp.count(b"\nm=") + (1 if sdp.startswith(b"m=") else 0)


def one_audio_stream(sdp: bytes) -> bytes:
    """The offer with every enabled ``m=audio`` section after the first enabled one disabled
    (port 0); unchanged when it has at most one (nearly every call: one count, no parse)."""
    if sdp.count(b"m=audio ") < 2:
        return sdp
    lines, newline = _split(sdp)
    seen = False
    changed = False
    for i in _m_indexes(lines):
        line = lines[i]
        if not line.startswith("m=audio ") or not _enabled(line):
            continue
        if seen:
            lines[i] = _with_port(line, "0")
            changed = True
        seen = True
    return _join(lines, newline) if changed else sdp


def disabled_sections(sdp: bytes) -> list[int]:
    """Indexes of the ``m=`` sections whose port is 0."""
    lines, _ = _split(sdp)
    return [n for n, i in enumerate(_m_indexes(lines)) if not _enabled(lines[i])]


def keep_disabled(answer: bytes, offer: bytes) -> bytes:
    """``answer`` with port 0 in every section the ``offer`` it answers had at port 0."""
    if _DISABLED.search(offer) is None:  # no disabled section: the usual case, no parse
        return answer
    off = set(disabled_sections(offer))
    if not off:
        return answer
    lines, newline = _split(answer)
    changed = False
    for n, i in enumerate(_m_indexes(lines)):
        if n in off and _enabled(lines[i]):
            lines[i] = _with_port(lines[i], "0")
            changed = True
    return _join(lines, newline) if changed else answer


def _extra_sections(lines: list[str], count: int) -> list[str]:
    """The sections of ``lines`` after its first ``count``, each at port 0 (its ``m=`` line and
    its ``c=`` and ``a=rtpmap`` lines)."""
    m_at = _m_indexes(lines)
    out: list[str] = []
    for n, j in enumerate(m_at[count:], start=count):
        end = m_at[n + 1] if n + 1 < len(m_at) else len(lines)
        out.append(_with_port(lines[j], "0"))
        out.extend(line for line in lines[j + 1 : end] if line.startswith(("c=", "a=rtpmap:")))
    return out


def pad_sections(sdp: bytes, like: bytes) -> bytes:
    """``sdp`` with the sections ``like`` has beyond its own count appended at port 0 (so it
    has as many ``m=`` lines as ``like``); unchanged when it has as many already."""
    if section_count(like) <= section_count(sdp):
        return sdp
    lines, newline = _split(sdp)
    seen, _ = _split(like)
    return _join(lines + _extra_sections(seen, len(_m_indexes(lines))), newline)


def trim_sections(sdp: bytes, count: int) -> bytes:
    """``sdp`` without its sections after the first ``count`` (an answer cut back to the offer it
    answers, when we had padded that offer with disabled sections)."""
    if section_count(sdp) <= count:
        return sdp
    lines, newline = _split(sdp)
    return _join(lines[: _m_indexes(lines)[count]], newline)


def _origin(lines: list[str]) -> int | None:
    return next((i for i, line in enumerate(lines) if line.startswith("o=")), None)


def restoring_offer(in_force: bytes, last_seen: bytes, fresh: bytes | None = None) -> bytes:
    """The offer that puts a party back on ``in_force`` (the SDP we last sent it that it had
    accepted) after it saw ``last_seen`` (our refused re-offer, which it answered): in_force's
    sections, their ports taken from ``fresh`` (what the engine gives that party now, when it
    has that many sections) where they moved; further sections of ``last_seen`` kept, at port 0;
    the origin line of ``last_seen`` with its version one higher."""
    lines, newline = _split(in_force)
    seen, _ = _split(last_seen)
    m_at = _m_indexes(lines)
    if fresh is not None:
        now, _ = _split(fresh)
        now_m = _m_indexes(now)
        if len(now_m) >= len(m_at):
            for i, j in zip(m_at, now_m, strict=False):
                lines[i] = _with_port(lines[i], _port(now[j]))
    lines.extend(_extra_sections(seen, len(m_at)))
    at, seen_at = _origin(lines), _origin(seen)
    if at is not None and seen_at is not None:
        fields = seen[seen_at].split(" ")
        if len(fields) > 2 and fields[2].isdigit():
            fields[2] = str(int(fields[2]) + 1)
        lines[at] = " ".join(fields)
    return _join(lines, newline)


_VERSION = re.compile(rb"^(o=\S+ \S+ )(\d+)( )", re.MULTILINE)


def version_above(sdp: bytes, last: bytes) -> bytes:
    """``sdp`` with its origin version raised to one above ``last``'s when it is not above it
    already: the parties' own version counters go on as they were, but a party we sent a
    restoring offer (whose version we chose) must still see each new SDP's version go up."""
    mine, theirs = _VERSION.search(sdp), _VERSION.search(last)
    if mine is None or theirs is None or int(mine.group(2)) > int(theirs.group(2)):
        return sdp
    return sdp[: mine.start(2)] + str(int(theirs.group(2)) + 1).encode() + sdp[mine.end(2) :]


def media_key(sdp: bytes) -> tuple[tuple[str, ...], ...]:
    """Per section: kind, port, protocol, first format, connection address, direction."""
    lines, _ = _split(sdp)
    session_c = ""
    session_direction = "a=sendrecv"
    sections: list[list[str]] = []
    for line in lines:
        if line.startswith("m="):
            fields = line[2:].split(" ")
            fields += [""] * (4 - len(fields))
            sections.append([fields[0], fields[1], fields[2], fields[3], "", ""])
        elif line.startswith("c="):
            if sections:
                sections[-1][4] = line
            else:
                session_c = line
        elif line in _DIRECTIONS:
            if sections:
                sections[-1][5] = line
            else:
                session_direction = line
    return tuple(tuple([*s[:4], s[4] or session_c, s[5] or session_direction]) for s in sections)
