"""The codecs of an SDP body's audio section, read and edited as text (per call, never per packet).

The media engine rewrites SDP itself (ports, addresses, the codec options of an ng offer); the
B2BUA only needs to *read* the codecs a party offered or answered, to plan the call with the
gateways' codec settings (:mod:`signaling.media.codec_policy`), and to make the two edits the
engine's vocabulary has no word for:

* :func:`keep_formats` — restrict the audio ``m=`` line to some payload types (with media proxy
  off, where no engine sits between the parties);
* :func:`audio_first` — list telephone-event and comfort noise after the audio codecs (the
  engine appends the codecs it adds after the caller's formats; a carrier that takes the first
  format as the codec must find an audio one there);
* :func:`name_g729` — spell G.729 the way a gateway's "G729 negotiation mode" wants it
  (``G729`` / ``G729a``, or both on two payload types);
* :func:`telephone_event_on` / :func:`drop_telephone_event` — put telephone-event/8000 on a
  gateway's "RFC2833 Payload" (renumbered, or added for "Use peer RFC2833 ability" unchecked),
  and take an added one out of the answer toward a caller that never offered it.

Only the voice section is looked at: the first *enabled* ``m=audio`` section (the B2BUA plans one
audio stream per call and refuses further ones with port 0, :mod:`signaling.media.sdp_streams`);
other sections and every other line pass through byte for byte, with the body's own line
ending.
"""

from __future__ import annotations

from signaling.media.codec_policy import STATIC_PT, Codec

__all__ = [
    "audio_codecs",
    "audio_first",
    "drop_telephone_event",
    "keep_formats",
    "name_g729",
    "telephone_event_on",
]

#: RFC 3551 static audio payload types: (encoding name, clock rate, channels).
STATIC_CODECS: dict[int, tuple[str, int, int]] = {
    0: ("PCMU", 8000, 1),
    3: ("GSM", 8000, 1),
    4: ("G723", 8000, 1),
    8: ("PCMA", 8000, 1),
    9: ("G722", 8000, 1),
    13: ("CN", 8000, 1),
    15: ("G728", 8000, 1),
    18: ("G729", 8000, 1),
}
#: First payload type of the RFC 3551 dynamic range (96-127).
FIRST_DYNAMIC_PT = 96


def _split(sdp: bytes) -> tuple[list[str], str]:
    text = sdp.decode("utf-8", "replace")
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines, newline


def _join(lines: list[str], newline: str) -> bytes:
    return (newline.join(lines) + newline).encode("utf-8")


def _voice(line: str) -> bool:
    """An enabled ``m=audio`` line (its port is not 0)."""
    return line.startswith("m=audio ") and not line.startswith(("m=audio 0 ", "m=audio 0/"))


def _audio_section(lines: list[str]) -> tuple[int, int] | None:
    """[start, end) line indexes of the voice section, the first enabled ``m=audio`` section
    (start = its ``m=`` line)."""
    start = next((i for i, line in enumerate(lines) if _voice(line)), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("m=")), len(lines))
    return start, end


def _attribute_pt(line: str) -> int | None:
    """The payload type an ``a=rtpmap``/``a=fmtp``/``a=rtcp-fb`` line describes, else None."""
    for prefix in ("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"):
        if line.startswith(prefix):
            head = line[len(prefix) :].split(" ", 1)[0]
            return int(head) if head.isdigit() else None
    return None


def audio_codecs(sdp: bytes) -> list[Codec] | None:
    """The codecs of the voice section (the first enabled audio section), in ``m=`` order
    (formats we cannot name — a dynamic payload type without ``a=rtpmap`` — are left out); None
    when there is no enabled audio section (nothing to negotiate). Runs on every call: it reads
    only that section."""
    text = sdp.decode("latin-1")  # the codec lines are ASCII; nothing read here is re-encoded
    start = text.find("m=audio ")
    while start >= 0 and (
        (start > 0 and text[start - 1] != "\n") or text.startswith(("m=audio 0 ", "m=audio 0/"), start)
    ):
        start = text.find("m=audio ", start + 1)
    if start < 0:
        return None
    end = text.find("\nm=", start)
    lines = text[start : end if end >= 0 else len(text)].splitlines()
    fields = lines[0].split()
    if len(fields) < 4 or fields[1] == "0":
        return None
    rtpmaps: dict[int, tuple[str, int, int]] = {}
    fmtps: dict[int, str] = {}
    for line in lines[1:]:
        if not line.startswith(("a=rtpmap:", "a=fmtp:")):
            continue
        head, _, value = line.partition(" ")
        pt_text = head.partition(":")[2]
        if not pt_text.isdigit():
            continue
        pt = int(pt_text)
        if line[2] == "r":
            parts = value.strip().split("/")
            try:
                rate = int(parts[1]) if len(parts) > 1 else 8000
                channels = int(parts[2]) if len(parts) > 2 else 1
            except ValueError:
                continue
            rtpmaps[pt] = (parts[0], rate, channels)
        else:
            fmtps[pt] = value.strip()
    out: list[Codec] = []
    for pt_text in fields[3:]:
        if not pt_text.isdigit() or int(pt_text) > 127:
            continue
        pt = int(pt_text)
        known = rtpmaps.get(pt) or STATIC_CODECS.get(pt)
        if known is not None:
            name, rate, channels = known
            out.append(Codec(pt, name, rate, channels, fmtps.get(pt)))
    return out


def keep_formats(sdp: bytes, pts: list[int]) -> bytes:
    """The SDP with its voice section's format list cut to ``pts`` (in that order, those
    it has), and the attribute lines of the formats removed dropped with them."""
    lines, newline = _split(sdp)
    found = _audio_section(lines)
    if found is None:
        return sdp
    start, end = found
    fields = lines[start].split(" ")
    present = set(fields[3:])
    kept = [str(pt) for pt in pts if str(pt) in present]
    if not kept or kept == fields[3:]:
        return sdp
    keep = set(kept)
    section = [" ".join(fields[:3] + kept)]
    for line in lines[start + 1 : end]:
        pt = _attribute_pt(line)
        if pt is None or str(pt) in keep:
            section.append(line)
    return _join(lines[:start] + section + lines[end:], newline)


def audio_first(sdp: bytes) -> bytes:
    """The SDP with telephone-event and comfort-noise formats of its voice section moved
    after the others (their order kept); unchanged when they already are."""
    codecs = audio_codecs(sdp)
    if not codecs:
        return sdp
    late = {str(c.pt) for c in codecs if c.is_telephone_event or c.name.upper() == "CN"}
    lines, newline = _split(sdp)
    found = _audio_section(lines)
    assert found is not None
    start = found[0]
    fields = lines[start].split(" ")
    formats = [f for f in fields[3:] if f not in late] + [f for f in fields[3:] if f in late]
    if formats == fields[3:]:
        return sdp
    lines[start] = " ".join(fields[:3] + formats)
    return _join(lines, newline)


def name_g729(sdp: bytes, names: list[str]) -> bytes:
    """The SDP with G.729 named ``names[0]`` in its voice section and, for each further
    name, the same codec added again under that name on a free dynamic payload type (right
    after the first, with the same ``a=fmtp``). Without G.729 in the section, unchanged."""
    if not names:
        return sdp
    codecs = audio_codecs(sdp)
    g729 = next((c for c in codecs or [] if c.family == "G729"), None)
    if g729 is None:
        return sdp
    if len(names) == 1 and g729.name == names[0]:
        return sdp
    lines, newline = _split(sdp)
    found = _audio_section(lines)
    assert found is not None  # audio_codecs found the section
    start, end = found
    fields = lines[start].split(" ")
    used = {int(f) for f in fields[3:] if f.isdigit()} | set(STATIC_PT.values())
    rtpmap = f"a=rtpmap:{g729.pt} {names[0]}/8000"
    section: list[str] = []
    had_rtpmap = False
    for line in lines[start + 1 : end]:
        if line.startswith(f"a=rtpmap:{g729.pt} "):
            section.append(rtpmap)
            had_rtpmap = True
        else:
            section.append(line)
    if not had_rtpmap:
        section.insert(_first_attribute(section), rtpmap)
    added: list[str] = []
    formats = fields[3:]
    position = formats.index(str(g729.pt)) + 1
    for name in names[1:]:
        pt = next(p for p in range(FIRST_DYNAMIC_PT, 128) if p not in used)
        used.add(pt)
        formats.insert(position, str(pt))
        position += 1
        added.append(f"a=rtpmap:{pt} {name}/8000")
        if g729.fmtp is not None:
            added.append(f"a=fmtp:{pt} {g729.fmtp}")
    if added:
        at = max((i + 1 for i, line in enumerate(section) if _attribute_pt(line) is not None), default=0)
        section[at:at] = added
    return _join([*lines[:start], " ".join(fields[:3] + formats), *section, *lines[end:]], newline)


def _first_attribute(section: list[str]) -> int:
    """Where an attribute line goes in a media section: after its ``c=``/``b=``/``i=`` lines."""
    return next((i for i, line in enumerate(section) if line.startswith("a=")), len(section))


def telephone_event_on(sdp: bytes, pt: int, add: bool) -> tuple[bytes, bool]:
    """The SDP with its voice section's telephone-event/8000 on payload type ``pt`` (its
    ``a=rtpmap``, ``a=fmtp`` and ``m=`` entry renumbered), or, when the section has none and
    ``add``, with ``pt`` appended as telephone-event/8000 with ``a=fmtp:<pt> 0-16``. Returns
    the SDP and whether it added the format. A ``pt`` the section uses for another format
    leaves it unchanged (that format keeps its number)."""
    if not add and b"elephone-event/8000" not in sdp:  # the common case: nothing to read
        return sdp, False
    if f"a=rtpmap:{pt} telephone-event/8000".encode() in sdp:
        return sdp, False
    lines, newline = _split(sdp)
    found = _audio_section(lines)
    if found is None:
        return sdp, False
    start, end = found
    fields = lines[start].split(" ")
    old = next(
        (
            _attribute_pt(line)
            for line in lines[start + 1 : end]
            if line.startswith("a=rtpmap:")
            and line.split(" ", 1)[-1].lower().startswith("telephone-event/8000")
        ),
        None,
    )
    if str(pt) in fields[3:] or (old is None and not add):
        return sdp, False
    if old is None:
        lines[start] = " ".join([*fields, str(pt)])
        last = max(
            (i for i in range(start + 1, end) if lines[i].startswith(("a=rtpmap:", "a=fmtp:"))),
            default=end - 1,
        )
        lines[last + 1 : last + 1] = [f"a=rtpmap:{pt} telephone-event/8000", f"a=fmtp:{pt} 0-16"]
        return _join(lines, newline), True
    lines[start] = " ".join(fields[:3] + [str(pt) if f == str(old) else f for f in fields[3:]])
    section = [line for line in lines[start:end] if not line.startswith(f"a=fmtp:{old} ")]
    for i, line in enumerate(section):
        if _attribute_pt(line) == old:
            head, _, rest = line.partition(":")
            section[i] = f"{head}:{pt}{rest[len(str(old)) :]}"
            if line.startswith("a=rtpmap:"):
                section.insert(i + 1, f"a=fmtp:{pt} 0-16")
    return _join(lines[:start] + section + lines[end:], newline), False


def drop_telephone_event(sdp: bytes) -> bytes:
    """The SDP without the telephone-event formats of its voice section."""
    codecs = audio_codecs(sdp)
    if not codecs:
        return sdp
    return keep_formats(sdp, [c.pt for c in codecs if not c.is_telephone_event])
