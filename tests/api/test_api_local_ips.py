"""A routing gateway's source_ip over the REST API inside a node (timers-trace-routing-dialplan.md
§12, behaviour 80: an IP not in the configured local-IP set cannot be selected): a write naming
another IP is refused with the field named; a listed one is stored."""

from __future__ import annotations

from tests.api.conftest import clock
from tests.api.conftest_app import Api, api

__all__ = ["api", "clock"]

V1 = "/api/v1"


def test_source_ip_outside_the_nodes_local_ips_is_refused(api: Api) -> None:
    api.context.local_ips = frozenset({"127.0.0.1", "127.0.0.2"})  # as a node on them sets it
    admin = api.login("root")
    refused = admin.post(
        f"{V1}/routing-gateways", json={"name": "far", "host": "198.51.100.7", "source_ip": "127.0.0.9"}
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "source_ip"
    assert "127.0.0.9 is not one of this node's local IPs (127.0.0.1, 127.0.0.2)" in refused.text
    made = admin.post(
        f"{V1}/routing-gateways", json={"name": "near", "host": "198.51.100.7", "source_ip": "127.0.0.2"}
    )
    assert made.status_code == 201, made.text
    rid = made.json()["id"]
    changed = admin.patch(f"{V1}/routing-gateways/{rid}", json={"source_ip": "127.0.0.9"})
    assert changed.status_code == 422 and changed.json()["field"] == "source_ip", changed.text
    assert admin.get(f"{V1}/routing-gateways/{rid}").json()["source_ip"] == "127.0.0.2", "nothing applied"
    assert admin.patch(f"{V1}/routing-gateways/{rid}", json={"source_ip": ""}).status_code == 200


def test_without_a_node_the_api_does_not_judge_source_ip(api: Api) -> None:
    """An API not inside a node does not know its IPs: stored (the node skips it at call time)."""
    admin = api.login("root")
    made = admin.post(
        f"{V1}/routing-gateways", json={"name": "far", "host": "198.51.100.7", "source_ip": "127.0.0.9"}
    )
    assert made.status_code == 201, made.text
