"""Network utilisation on the dashboard beside CPU, RAM and disk (web manager §7.3/§7.9,
behaviour 65): per interface, Mb/s in and out, and the percent of capacity with its band
(0-50 % normal, 50-75 % warning, above critical) where the capacity is known. The figures are
the node's alarm sampler's (signaling.observe.system.SystemSampler) over fixed /proc and
/sys/class/net files, as the observe tests read them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from signaling.observe.system import SystemSampler, Throughput
from signaling.store import open_store
from signaling.web.sysstats import network_use
from tests.observe.test_failure_watch_capacity import NETDEV_1, NETDEV_2
from tests.web.conftest import PASSWORD, Clock, WebClient, WebEnv, build
from tests.web.test_live_dashboard import _events, _login, serving


def sampled(tmp_path: Path) -> SystemSampler:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "dev").write_text(NETDEV_1)
    sys_net = tmp_path / "sys"
    (sys_net / "eth0").mkdir(parents=True)
    (sys_net / "eth0" / "speed").write_text("100\n")
    (sys_net / "veth1").mkdir()
    (sys_net / "veth1" / "speed").write_text("-1\n")  # a virtual NIC: no link speed
    sampler = SystemSampler(disk_paths=(), proc=tmp_path, sys_net=sys_net)
    sampler.sample(0.0)
    (tmp_path / "net" / "dev").write_text(NETDEV_2)
    sampler.sample(10.0)
    return sampler


@pytest.fixture
def env_with_network(tmp_path: Path) -> Iterator[WebEnv]:
    sampler = sampled(tmp_path)
    store = open_store(f"sqlite:///{tmp_path / 'net.db'}")
    try:
        env = build(store, Clock(), network=lambda: sampler.throughput)
        env.users.add("alice", "admin", PASSWORD)
        yield env
    finally:
        store.close()


def test_network_use_has_the_band_only_where_the_capacity_is_known() -> None:
    used = network_use(
        {
            "eth1": Throughput(30e6, 10e6, 100.0, 30.0),
            "eth0": Throughput(80e6, 8e6, 100.0, 80.0),
            "eth2": Throughput(1e6, 60e6, 100.0, 60.0),
            "tun0": Throughput(1.25e6, 0.0, None, None),
        }
    )
    assert [u.interface for u in used] == ["eth0", "eth1", "eth2", "tun0"]
    assert [u.band for u in used] == ["critical", "normal", "warning", None]
    assert (used[0].rx_mbps, used[0].tx_mbps, used[0].percent) == (80.0, 8.0, 80.0)
    assert (used[3].rx_mbps, used[3].capacity_mbps, used[3].percent) == (1.2, None, None)
    assert network_use({}) == ()


def test_the_dashboard_shows_each_interface_from_the_alarm_sampler(env_with_network: WebEnv) -> None:
    client = WebClient(env_with_network.app)
    try:
        client.login()
        page = client.get("/manage/").text
    finally:
        client.close()
    eth0 = page.split('data-network="eth0"')[1].split('data-network="veth1"')[0]
    assert 'class="tile critical"' in page.split('data-network="eth0"')[0].rsplit("<div", 1)[1]
    assert "Network eth0" in eth0 and "80.0 %" in eth0
    assert '"net_eth0_in">80.0<' in eth0 and '"net_eth0_out">8.0<' in eth0 and "of 100 Mb/s" in eth0
    veth1 = page.split('data-network="veth1"')[1].split("</div></div>")[0]
    opening = page.split('data-network="veth1"')[0].rsplit("<div", 1)[1]
    assert 'class="tile "' in opening, "no capacity: no band"
    assert '"net_veth1_in">0.0<' in veth1 and '"net_veth1_out">40.0<' in veth1
    assert "capacity unknown" in veth1 and "%" not in veth1
    assert 'data-network="lo"' not in page


def test_without_a_sampler_the_dashboard_has_no_network_tile(web_env: WebEnv, client: WebClient) -> None:
    client.login()
    page = client.get("/manage/").text
    assert 'data-live="cpu"' in page and "data-network=" not in page


@pytest.mark.timeout(30)
def test_the_live_feed_carries_the_network_figures(env_with_network: WebEnv) -> None:
    async def main() -> None:
        async with serving(env_with_network) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
            await _login(http)
            (first,) = await _events(http, 1)
            assert (first["net_eth0_in"], first["net_eth0_out"], first["net_eth0_pct"]) == (80.0, 8.0, 80.0)
            assert (first["net_veth1_out"], first["net_veth1_pct"]) == (40.0, None)

    asyncio.run(main())
