"""The SIP UDP socket keeps a burst that arrives while the event loop is busy elsewhere.

At a few hundred calls per second the loop thread sometimes stays off the CPU for a few hundred
milliseconds on a shared machine (or runs a long handler); what arrives meanwhile waits in the
socket's receive buffer. With the kernel's default (~200 kB) the datagrams beyond it were
dropped, and each one lost became a failed call (bench/README.md, calls per second at 400 CPS).
The transport asks for 4 MiB (UDP_RECEIVE_BUFFER): a burst of 2,000 SIP-sized datagrams sent
while the loop is blocked must all be delivered once it runs again.
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from signaling.sip.transport import UDP_RECEIVE_BUFFER, SipTransport
from tests.b2bua_harness import port_block

BURST = 2_000  # datagrams
SIZE = 600  # bytes each: a SIP request without a body is about this


def _rmem_max() -> int:
    try:
        return int(Path("/proc/sys/net/core/rmem_max").read_text())
    except (OSError, ValueError):
        return 0


@pytest.mark.skipif(_rmem_max() < UDP_RECEIVE_BUFFER, reason="the kernel caps receive buffers lower")
def test_a_burst_during_a_busy_loop_is_delivered_whole() -> None:
    received: list[bytes] = []

    async def main() -> None:
        with port_block() as base:
            transport = SipTransport(lambda data, addr, kind: received.append(data))
            host, port = await transport.start("127.0.0.1", base, tcp=False)
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                assert transport._udp is not None
                sock = transport._udp.get_extra_info("socket")
                # Linux reports twice what was granted (its bookkeeping share included)
                granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
                payload = b"x" * SIZE
                for i in range(BURST):  # the loop runs nothing while this loop sends
                    sender.sendto(b"%06d" % i + payload, (host, port))
                time.sleep(0.2)  # and stays busy a moment longer
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 5.0
                while len(received) < BURST and loop.time() < deadline:
                    await asyncio.sleep(0.02)
            finally:
                sender.close()
                await transport.close()
        assert len(received) == BURST, f"{BURST - len(received)} of {BURST} lost"
        assert sorted(int(d[:6]) for d in received) == list(range(BURST))
        assert granted >= UDP_RECEIVE_BUFFER

    asyncio.run(asyncio.wait_for(main(), 30))
