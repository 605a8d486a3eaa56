"""The destination watch (architecture notes T78, "calls go to an unexpected destination
prefix"; §9.5 "alerts for ... unexpected destinations"): sans-IO, on the node's clock.

``[alarms] watch_prefixes`` lists callee prefixes an operator wants to hear about (premium-rate
ranges, fraud-prone countries, satellite numbers). A call *routed* to one — the node is about to
send its INVITE to a routing gateway, and the number the caller dialed or the number sent to
the carrier starts with the prefix — is counted once (a failover to another carrier is the same
call) against the longest matching prefix. Calls to one prefix less than ``watch_window`` seconds
apart make one *episode* and one "destination_watch" alarm (warning) naming the prefix, the
episode's count and the last call (account, caller, callee, mapping and routing gateway, Call-ID):
a fraud burst of hundreds of calls is one alarm with a count, cleared ``watch_window`` seconds
after its last call. With an empty list nothing is looked up (the router checks ``prefixes``
first); with one, a call costs a tuple of ``startswith`` tests and a dict update.
"""

from __future__ import annotations

from dataclasses import dataclass

from signaling.observe.alarms import WARNING, AlarmConfig, Condition

__all__ = ["DestinationWatch"]


@dataclass(slots=True)
class _Episode:
    first: float
    last: float
    count: int = 0
    detail: str = ""


class DestinationWatch:
    def __init__(self, config: AlarmConfig | None = None) -> None:
        #: watched prefixes, longest first (the first match is the longest)
        self.prefixes: tuple[str, ...] = ()
        self.window = 300.0
        self.episodes: dict[str, _Episode] = {}
        #: calls counted so far by prefix (metrics)
        self.totals: dict[str, int] = {}
        #: calls in progress already counted: Call-ID -> prefix
        self._open: dict[str, str] = {}
        self.configure(config or AlarmConfig())

    def configure(self, config: AlarmConfig) -> None:
        unique = {p.strip() for p in config.watch_prefixes if p.strip()}
        self.prefixes = tuple(sorted(unique, key=lambda p: (-len(p), p)))
        self.window = config.watch_window

    def match(self, numbers: tuple[str, ...]) -> str | None:
        """The longest watched prefix any of ``numbers`` starts with."""
        for prefix in self.prefixes:
            if any(n.startswith(prefix) for n in numbers):
                return prefix
        return None

    def routed(
        self,
        now: float,
        call_id: str,
        numbers: tuple[str, ...],
        *,
        account: str,
        caller: str,
        ingress: str,
        gateway: str,
    ) -> str | None:
        """A call is being sent to ``gateway``; the prefix it was counted against, if any."""
        if not self.prefixes:
            return None
        prefix = self._open.get(call_id) or self.match(numbers)
        if prefix is None:
            return None
        episode = self.episodes.get(prefix)
        if episode is None or now - episode.last >= self.window:
            episode = self.episodes[prefix] = _Episode(now, now)
        if call_id not in self._open:  # its first carrier: one more call
            self._open[call_id] = prefix
            episode.count += 1
            self.totals[prefix] = self.totals.get(prefix, 0) + 1
        episode.last = now
        callee = " / ".join(dict.fromkeys(n for n in numbers if n))
        episode.detail = (
            f"last call {call_id}: account {account or '-'}, {caller or '-'} -> {callee},"
            f" {ingress or '-'} -> {gateway}"
        )
        return prefix

    def call_ended(self, call_id: str) -> None:
        if self._open:
            self._open.pop(call_id, None)

    def conditions(self, now: float) -> list[Condition]:
        """One bad condition per prefix whose episode is open; closed ones are dropped (their
        alarms clear as no longer reported)."""
        out = []
        for prefix, ep in list(self.episodes.items()):
            if now - ep.last >= self.window:
                del self.episodes[prefix]
                continue
            message = (
                f"{ep.count} call(s) to watched prefix {prefix} in the last"
                f" {max(now - ep.first, 0.0):.0f} s; {ep.detail}"
            )
            out.append(Condition("destination_watch", prefix, "bad", WARNING, message, ep.count))
        return out
