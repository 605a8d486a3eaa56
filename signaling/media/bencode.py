"""Bencode, the encoding of rtpengine's ng control protocol (dicts, lists, integers, strings).

Strings decode to ``bytes``; the ng layer above decides which are text. Encoding accepts ``str``
(UTF-8) and ``bytes``; dictionary keys are sorted as bencode requires.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Value = int | bytes | list["Value"] | dict[bytes, "Value"]
Encodable = int | str | bytes | Sequence["Encodable"] | Mapping[str | bytes, "Encodable"]

#: Nesting deeper than this is refused on decode (a hostile peer cannot exhaust the stack).
MAX_DEPTH = 32


class BencodeError(ValueError):
    pass


def encode(value: Encodable) -> bytes:
    out: list[bytes] = []
    _encode(value, out)
    return b"".join(out)


def _encode(value: Encodable, out: list[bytes]) -> None:
    if isinstance(value, bool):
        raise BencodeError("booleans have no bencode form")
    if isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, str | bytes):
        raw = value.encode() if isinstance(value, str) else value
        out.append(b"%d:" % len(raw))
        out.append(raw)
    elif isinstance(value, Mapping):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        out.append(b"d")
        for key, item in items:
            out.append(b"%d:" % len(key))
            out.append(key)
            _encode(item, out)
        out.append(b"e")
    elif isinstance(value, Sequence):
        out.append(b"l")
        for item in value:
            _encode(item, out)
        out.append(b"e")
    else:
        raise BencodeError(f"cannot bencode {type(value).__name__}")


def decode(data: bytes) -> Value:
    value, end = _decode(data, 0, 0)
    if end != len(data):
        raise BencodeError(f"trailing bytes after offset {end}")
    return value


def _decode(data: bytes, i: int, depth: int) -> tuple[Value, int]:
    if depth > MAX_DEPTH:
        raise BencodeError("nesting too deep")
    if i >= len(data):
        raise BencodeError("truncated")
    lead = data[i : i + 1]
    if lead == b"i":
        return _decode_int(data, i)
    if lead == b"l":
        items: list[Value] = []
        i += 1
        while data[i : i + 1] != b"e":
            item, i = _decode(data, i, depth + 1)
            items.append(item)
        return items, i + 1
    if lead == b"d":
        mapping: dict[bytes, Value] = {}
        i += 1
        while data[i : i + 1] != b"e":
            key, i = _decode(data, i, depth + 1)
            if not isinstance(key, bytes):
                raise BencodeError("dictionary key is not a string")
            mapping[key], i = _decode(data, i, depth + 1)
        return mapping, i + 1
    if lead.isdigit():
        return _decode_str(data, i)
    raise BencodeError(f"unexpected byte {lead!r} at offset {i}")


def _decode_int(data: bytes, i: int) -> tuple[int, int]:
    end = data.find(b"e", i)
    if end < 0:
        raise BencodeError("unterminated integer")
    try:
        return int(data[i + 1 : end]), end + 1
    except ValueError as exc:
        raise BencodeError(f"bad integer at offset {i}") from exc


def _decode_str(data: bytes, i: int) -> tuple[bytes, int]:
    colon = data.find(b":", i)
    if colon < 0 or not data[i:colon].isdigit():
        raise BencodeError(f"bad string length at offset {i}")
    start = colon + 1
    end = start + int(data[i:colon])
    if end > len(data):
        raise BencodeError("truncated string")
    return data[start:end], end
