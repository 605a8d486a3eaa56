"""``[store]`` in the node's configuration, and ``softswitch run`` on a store: the StoreRouter
serves the calls when a store URL is configured, the static tables otherwise."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from signaling.config import ConfigError, load
from signaling.store import open_store
from tests.b2bua_harness import port_block
from tests.callproc.world import basic_world
from tests.helpers import options_until_answered


def test_store_url_and_node_are_read() -> None:
    cfg = load({"store": {"url": "postgresql://ss@db/ss", "node": "sbc-1"}})
    assert (cfg.store_url, cfg.store_node) == ("postgresql://ss@db/ss", "sbc-1")
    assert load({}).store_url is None


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ({"url": "mysql://x"}, "store.url: 'mysql://x': expected sqlite:///PATH or postgresql://..."),
        ({"url": "sqlite:///"}, "store.url: SQLite needs a file path"),
        ({}, "store.url: required"),
        ({"url": 5}, "store.url: expected text"),
        ({"url": "sqlite:///a.db", "nodes": "x"}, "store.nodes: unknown key (did you mean 'node'?)"),
        ({"url": "sqlite:///a.db", "node": "two words"}, "store.node: expected a name without spaces"),
    ],
)
def test_bad_store_settings_are_named(store: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load({"store": store})
    assert str(caught.value).startswith(message)


def test_gateway_tables_and_a_store_do_not_mix() -> None:
    with pytest.raises(ConfigError, match=r"^mapping_gateway: gateways come from the store"):
        load(
            {
                "store": {"url": "sqlite:///a.db"},
                "mapping_gateway": [{"name": "c", "addresses": ["127.0.0.1"]}],
            }
        )


def test_softswitch_run_serves_from_the_store_and_stops_cleanly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ss.db'}"
    with open_store(url) as store:
        basic_world(store)
    with port_block() as base:
        cfg = tmp_path / "node.toml"
        cfg.write_text(
            f'[sip]\nlisten = "127.0.0.1:{base}"\n'
            f"[parameters]\nSS_MEDIAPROXYPORT_START = {base + 60}\nSS_MEDIAPROXYPORT_END = {base + 99}\n"
            f'[store]\nurl = "{url}"\nnode = "test-node"\n'
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "signaling.cli", "run", "--config", str(cfg)],
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", 0))
                s.settimeout(0.5)
                reply = options_until_answered(s, base, "store-options-1")
                assert reply.startswith(b"SIP/2.0 200 "), reply
            os.kill(proc.pid, signal.SIGTERM)
            _, err = proc.communicate(timeout=20)
            assert proc.returncode == 0, err
            assert "store sqlite as node test-node: 1 customer and 1 carrier gateways" in err
            assert "stopped" in err
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_softswitch_run_refuses_to_start_without_its_store(tmp_path: Path) -> None:
    cfg = tmp_path / "node.toml"
    cfg.write_text(f'[sip]\nlisten = "127.0.0.1:5999"\n[store]\nurl = "sqlite:///{tmp_path}"\n')
    done = subprocess.run(
        [sys.executable, "-m", "signaling.cli", "run", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert f"store sqlite:///{tmp_path}:" in done.stderr
