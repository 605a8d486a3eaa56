"""A call's inputs, split from node.py: each call runs its inputs (messages, timers, media
replies) one at a time and in order, inline in the pump that delivered them — no task per input.
A media command on a media node (ng over UDP) is awaited: the call's later inputs queue behind
it and a task runs them once the reply came. The in-process engine's delete is held instead: it
returns at once, and the call's later inputs wait until its final statistics come back on the
loop (no task, and the loop never waits for a media worker). A mixin of :class:`Node`; it
uses only the attributes declared here.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from signaling.b2bua.call import Call, Continuation, MediaPort
from signaling.b2bua.stats import NodeStats
from signaling.media.control import DEFERRED, MediaControlError, OfferOptions
from signaling.observe.logs import call_context
from signaling.sip.dialog import DialogId
from signaling.sip.transaction import TransactionId

__all__ = ["CallInputs", "CallState"]

log = logging.getLogger("softswitch.node")

#: what an input returns when the call's later inputs must wait for a reply that comes later
#: on the loop (an in-process delete's final statistics): no task, no await
HELD = object()


@dataclass(slots=True)
class CallState:
    call: Call
    #: this call's own number: its timers' key (a Call-ID may come back while the call lingers)
    serial: int
    #: inputs waiting while another of the call's inputs runs (or awaits a remote media reply)
    queue: list[Callable[[], object]] = field(default_factory=list)
    #: an input of this call is running: new ones queue behind it
    running: bool = False
    #: only while a media command on a media node (ng over UDP) is awaited
    task: asyncio.Task[None] | None = None
    #: names of the timers this call has armed (cancelled when it ends)
    timer_names: list[str] = field(default_factory=list)
    #: what the node indexed for this call, to forget it without scanning every call's
    dialog_ids: list[DialogId] = field(default_factory=list)
    transactions: list[TransactionId] = field(default_factory=list)


def comfort_noise_key(call: Call) -> dict[str, str]:
    """SS_COMFORTNOISE of the call (its parameters from its start: the next call takes a stored
    change) as the engine's ``comfort-noise`` key: noise instead of dead air while a party is
    quiet on a transcoded direction (docs/architecture.md). A real rtpengine ignores the key."""
    return {"comfort-noise": "on" if call.parameters["SS_COMFORTNOISE"] else "off"}


class CallInputs:
    calls: dict[str, CallState]
    _lingering: dict[str, CallState]
    _loop: asyncio.AbstractEventLoop | None
    media_port: MediaPort
    stats: NodeStats
    #: SS_QOS_RTP as the node read it at start (signaling/b2bua/node.py)
    rtp_dscp: int

    if TYPE_CHECKING:

        def _pump(self) -> None: ...

    def post(self, call: Call, work: Callable[[], None]) -> None:
        """Run an input of ``call``: now when none of its inputs is running, else after them
        (a call's inputs run one at a time, in order)."""
        # _enqueue's lines: five times a call
        state = self.calls.get(call.call_id) or self._lingering.get(call.call_id)
        if state is None or state.call is not call:
            return
        state.queue.append(work)
        if not state.running:
            self._drain(state)

    def media(self, call: Call, command: str, args: tuple[Any, ...], then: Continuation) -> None:
        """Run a media command for ``call``; its later inputs wait until ``then`` has run. The
        in-process engine answers at once (``run_now``: no task, no await); a media node's
        reply is awaited, the call's later inputs queued meanwhile. An offer or an answer asks
        for the node's RTP marking (SS_QOS_RTP, read at start) as rtpengine's ``TOS`` key: the
        ToS byte, DSCP << 2, which our engine and a real rtpengine both apply; the call's voice
        gain (SS_VOICEGAIN) as our ``voice-gain`` key (:func:`_voice_gain`) and its
        SS_COMFORTNOISE as our ``comfort-noise`` key (:func:`comfort_noise_key`)."""
        if command in ("offer", "answer") and args and isinstance(args[-1], OfferOptions):
            options = args[-1]
            extra = {**options.extra, "TOS": self.rtp_dscp << 2, **comfort_noise_key(call)}
            extra.update(_voice_gain(call))
            args = (*args[:-1], OfferOptions(options.flags, options.codec, extra))
        port = self.media_port
        run_now = getattr(port, "run_now", None)
        if run_now is not None:
            later = getattr(port, "delete_later", None) if command == "delete" else None
            if later is not None and self._loop is not None:
                self._enqueue(call, partial(self._delete_held, later, run_now, call, args, then))
            else:
                self._enqueue(call, partial(_media_now, run_now, command, args, then))
            return

        async def run() -> None:
            try:
                result = await getattr(port, command)(*args)
            except MediaControlError as exc:
                result = exc
            then(result)

        self._enqueue(call, run)

    def _delete_held(
        self,
        later: Callable[..., object],
        run_now: Callable[[str, tuple[Any, ...]], object],
        call: Call,
        args: tuple[Any, ...],
        then: Continuation,
    ) -> object:
        """An in-process delete that does not wait for the media worker: the call's later
        inputs wait (``HELD``) until its final statistics reach ``then``, on the loop a moment
        later; the loop runs other calls meanwhile."""
        state = self.calls.get(call.call_id) or self._lingering.get(call.call_id)
        if state is None or state.call is not call or state.task is not None:
            _media_now(run_now, "delete", args, then)
            return None
        try:
            result = later(*args, partial(self._resume_held, state, then))
        except MediaControlError as exc:
            result = exc
        if result is DEFERRED:
            return HELD
        then(result)
        return None

    def _resume_held(self, state: CallState, then: Continuation, result: object) -> None:
        """The reply a held input waited for: hand it on, then run the call's queued inputs."""
        token = call_context.set(state.call.call_id)
        try:
            try:
                then(result)
            except Exception:
                self._input_failed(state)
            self._pump()
        finally:
            call_context.reset(token)
            state.running = False
        if state.queue:
            self._drain(state)

    def _enqueue(self, call: Call, work: Callable[[], object]) -> None:
        state = self.calls.get(call.call_id) or self._lingering.get(call.call_id)
        if state is None or state.call is not call:
            return
        state.queue.append(work)
        if not state.running:
            self._drain(state)

    def _drain(self, state: CallState) -> None:
        """Run the call's queued inputs in order, inline: no task per input. An input that
        returns an awaitable (a command to a media node) hands the rest to a task, and the
        call's inputs queue until that task has run them all."""
        state.running = True
        handed_over = False
        token = call_context.set(state.call.call_id)  # log records name the call
        try:
            queue = state.queue
            while queue:
                # _run_input's lines, inline (eight inputs a call)
                work = queue.pop(0)
                pending: Awaitable[object] | None = None
                try:
                    result = work()
                    if result is HELD:  # waits for an in-process reply: _resume_held goes on
                        self._pump()
                        handed_over = True
                        return
                    if result is not None and inspect.isawaitable(result):
                        pending = result
                except Exception:
                    self._input_failed(state)
                if pending is not None:
                    loop = self._loop or asyncio.get_running_loop()
                    state.task = loop.create_task(self._drain_awaiting(state, pending))
                    handed_over = True
                    return
                self._pump()
        finally:
            call_context.reset(token)
            if not handed_over:
                state.running = False

    def _run_input(self, state: CallState, work: Callable[[], object]) -> Awaitable[object] | None:
        """One input of a call; what it returns when that is an awaitable, else None (the
        input is done and what it sent has gone out)."""
        try:
            result = work()
            if result is not None and inspect.isawaitable(result):
                return result
        except Exception:
            self._input_failed(state)
        self._pump()
        return None

    def _input_failed(self, state: CallState) -> None:
        self.stats.handler_errors += 1
        log.exception("call %s: handler failed", state.call.call_id)
        if state.call.active:
            try:
                state.call.hangup("InternalError", status=500)
            except Exception:
                log.exception("call %s: hangup failed", state.call.call_id)

    async def _drain_awaiting(self, state: CallState, pending: Awaitable[object]) -> None:
        call_context.set(state.call.call_id)  # this task's log records name the call
        try:
            while True:
                try:
                    await pending
                except Exception:
                    self._input_failed(state)
                self._pump()
                next_pending = None
                while state.queue and next_pending is None:
                    next_pending = self._run_input(state, state.queue.pop(0))
                if next_pending is None:
                    return
                pending = next_pending
        finally:
            state.task = None  # a finished task per held call is memory for nothing
            state.running = False


def _media_now(
    run_now: Callable[[str, tuple[Any, ...]], object], command: str, args: tuple[Any, ...], then: Continuation
) -> None:
    """One in-process media command of a call, its reply (or refusal) handed on."""
    try:
        result = run_now(command, args)
    except MediaControlError as exc:
        result = exc
    then(result)


def _voice_gain(call: Call) -> dict[str, int]:
    """SS_VOICEGAIN (dB toward both parties) as the call started with it: a stored change
    reaches the next call (class ``reload``), a running call keeps its own. Sent as our ng key
    ``voice-gain`` only when not 0, so a real rtpengine sees nothing new by default (it would
    ignore the key anyway)."""
    gain = int(call.parameters.get("SS_VOICEGAIN", 0))
    return {"voice-gain": gain} if gain else {}
