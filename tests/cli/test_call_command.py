"""`softswitch call` against a node configured from a file (static tables): digest when the
node challenges (and a wrong password refused), a BYE from the far end, an unanswered call
cancelled after --answer-timeout, a node that does not answer at all, usage errors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.b2bua_harness import BLOCK, port_block, sipp, wait_bound
from tests.cli.conftest import Cli
from tests.cli.node import softswitch, softswitch_node


def _node_config(tmp_path: Path, base: int) -> Path:
    cfg = tmp_path / "node.yaml"
    cfg.write_text(
        f"""
sip:
  listen: "127.0.0.1:{base}"
parameters:
  SS_MEDIA_PROXY_PORT_RANGE: "{base + 60},{base + BLOCK - 1}"
mapping_gateway:
  - name: by-password
    username: alice
    password: s3cret
routing_gateway:
  - name: carrier
    address: "127.0.0.1:{base + 1}"
""",
        encoding="utf-8",
    )
    return cfg


def _call(base: int, *args: str) -> list[str]:
    return ["call", "555", "--node", f"127.0.0.1:{base}", "--json", *args]


@pytest.mark.timeout(120)
def test_digest_far_end_bye_and_cancel(tmp_path: Path, data_dir: Path) -> None:
    with port_block() as base:
        cfg = _node_config(tmp_path, base)

        async def main() -> None:
            async with softswitch_node(data_dir, "--config", str(cfg)) as node:
                await node.wait_for("node ready")
                # the right password: challenged, answered; the carrier hangs up after 1 s
                carrier = asyncio.create_task(
                    sipp("uas_hangup.xml", port=base + 1, media_port=base + 20, fill={"TALK_MS": "1000"})
                )
                await wait_bound(base + 1)
                code, out, err = await softswitch(
                    data_dir, *_call(base, "--user", "alice", "--password", "s3cret", "--duration", "5")
                )
                assert code == 0, out + err
                result = json.loads(out)
                assert result["answered"] and result["ended_by"] == "node", result
                whats = [e["what"] for e in result["events"]]
                assert any(w.startswith(("401 ", "407 ")) for w in whats), whats
                assert "INVITE again with credentials" in whats and "BYE from the node" in whats
                assert 0.8 <= result["end_at"] - result["answer_at"] < 4, result
                assert (await carrier).returncode == 0
                # a wrong password: refused, no carrier involved
                code, out, _ = await softswitch(
                    data_dir, *_call(base, "--user", "alice", "--password", "wrong")
                )
                assert code == 1
                wrong = json.loads(out)
                assert not wrong["answered"] and wrong["status"] in (401, 403, 407), wrong
                # no credentials at all
                code, out, _ = await softswitch(data_dir, *_call(base))
                assert code == 1 and json.loads(out)["status"] in (401, 407)
                # ringing, never answered: cancelled after the answer timeout
                ringing = asyncio.create_task(sipp("uas_ring.xml", port=base + 1, media_port=base + 20))
                await wait_bound(base + 1)
                code, out, err = await softswitch(
                    data_dir,
                    *_call(base, "--user", "alice", "--password", "s3cret", "--answer-timeout", "2"),
                )
                assert code == 1, out + err
                cancelled = json.loads(out)
                assert cancelled["status"] == 487 and cancelled["ring_at"] is not None, cancelled
                assert "CANCEL sent (no answer in time)" in [e["what"] for e in cancelled["events"]]
                assert (await ringing).returncode == 0
                assert await node.stop() == 0

        asyncio.run(main())


def test_a_silent_node_and_usage_errors(cli: Cli) -> None:
    with port_block() as base:  # nothing listens on the block's ports
        done = cli("call", "--node", f"127.0.0.1:{base}", "--answer-timeout", "1", timeout=30)
        assert done.returncode == 1
        assert "no response in time; gave up" in done.stdout and "no final response" in done.stdout
    assert cli("call", "--node", "example.org:5060").returncode == 2
    assert "is not an IP address" in cli("call", "--node", "example.org:5060").stderr
    assert cli("call", "--duration", "0").returncode == 2
    lonely = cli("call", "--password", "x")
    assert lonely.returncode == 2 and "--password needs --user" in lonely.stderr
