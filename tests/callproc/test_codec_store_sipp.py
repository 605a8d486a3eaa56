"""The store's codec settings drive a real call (transcoding spec §3.4, the reference scenario):
the customer's mapping gateway and the carrier's routing gateway allow codec conversion, the
carrier takes only G.729; SIPp's customer sends PCMA through the node on the StoreRouter to a
SIPp carrier answering G.729, whose media socket echoes what it gets. The CDR records both
legs' codecs."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from mediacore import MediaEngine
from signaling.b2bua.node import Node
from signaling.callproc import StoreRouter
from signaling.callproc.driver import RouterDriver
from signaling.config import load
from signaling.media.control import InProcessMedia
from signaling.store import open_store
from tests.b2bua_harness import BLOCK, port_block, sipp, wait_bound
from tests.callproc.world import basic_world
from tests.test_baresip_calls import echo_socket

CALLEE = ["-s", "12125550100"]


@pytest.mark.timeout(60)
def test_store_codec_settings_transcode_pcma_to_a_g729_carrier(tmp_path: Path) -> None:
    async def main() -> None:
        with contextlib.ExitStack() as stack:
            base = stack.enter_context(port_block())
            url = f"sqlite:///{tmp_path / 'node.db'}"
            store = stack.enter_context(open_store(url))
            basic_world(
                store,
                gateways=(
                    {
                        "name": "g729-carrier",
                        "prefixes": ("1",),
                        "port": base + 1,
                        "codecs": ("G729",),
                        "allow_transcoding": True,
                    },
                ),
                mapping={"addresses": ("127.0.0.1",), "allow_transcoding": True},
            )
            cfg = load({"sip": {"listen": f"127.0.0.1:{base}"}, "store": {"url": url, "node": "codecs"}})
            engine = MediaEngine(
                interface="127.0.0.1", port_min=base + 60, port_max=base + BLOCK - 1, workers=1
            )
            stack.callback(engine.close)
            media = InProcessMedia(engine)
            stack.callback(media.close)
            router = StoreRouter(store, node="codecs", parameters=cfg.parameters)
            done: asyncio.Queue[str] = asyncio.Queue()
            router.on_call_done(lambda call_id, _cdr: done.put_nowait(call_id))
            node = Node(cfg, media, router)
            await node.start()
            driver = RouterDriver(router, refresh_interval=0.5)
            driver.start()
            try:
                async with echo_socket(base + 50) as carrier_media:
                    carrier = asyncio.create_task(
                        sipp(
                            "uas_answer_g729_at.xml",
                            port=base + 1,
                            media_port=base + 20,
                            fill={"RTP_PORT": str(base + 50)},
                            trace=True,
                        )
                    )
                    await wait_bound(base + 1)
                    uac = await sipp(
                        "uac_basic.xml",
                        port=base + 10,
                        target=f"127.0.0.1:{base}",
                        media_port=base + 30,
                        extra=CALLEE,
                    )
                    uas = await carrier
                    assert uac.returncode == 0, uac.output
                    assert uas.returncode == 0, uas.output
                    invite = uas.only_received("INVITE").body
                    assert "G729/8000" in invite and "PCMA" not in invite, invite
                    g729 = [p for p in carrier_media.packets if p.payload_type == 18]
                    assert len(g729) >= 40, len(carrier_media.packets)  # SIPp's 1.7 s of speech
                    await asyncio.wait_for(done.get(), 5)
                    (cdr,) = list(router.records)
                    assert (cdr.routing_gateway, cdr.termination_reason) == ("g729-carrier", "Normal")
                    assert (cdr.codec_in, cdr.codec_out) == ("PCMA", "G729")
            finally:
                await node.stop()
                await driver.stop()

    asyncio.run(main())
