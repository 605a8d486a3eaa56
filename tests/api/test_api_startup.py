"""The node's API is built before the node answers calls: nothing an operator's first request
asks for is built on the loop afterwards, where SIP is served (issue 7: REST API on the node's
loop; issue 5: the overload guard samples that loop)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import fastapi.applications
import fastapi.openapi.utils
import httpx
import pytest

from signaling.api.server import start_node_api
from signaling.config import ApiConfig
from signaling.store import open_store


def test_the_openapi_document_is_built_at_start_not_on_the_loop_at_its_first_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building the OpenAPI document takes ~0.4 s of CPU (measured: 0.42 s). At its first
    request that stalled the node's loop, and the overload guard, which samples the loop's CPU
    every 0.5 s, answered the next new calls 503 (a node whose API document was fetched right
    after start refused its first call: tests/api/test_api_node_https.py). start_node_api
    builds it now; serving it builds nothing."""
    builds: list[str] = []
    build = fastapi.openapi.utils.get_openapi

    def counted(*args: Any, **kwargs: Any) -> dict[str, Any]:
        builds.append("built")
        return build(*args, **kwargs)

    monkeypatch.setattr(fastapi.applications, "get_openapi", counted)

    async def main() -> None:
        with open_store(f"sqlite:///{tmp_path / 'api.db'}") as store:
            server = await start_node_api(ApiConfig(listen=("127.0.0.1", 0)), store, console=io.StringIO())
            try:
                assert builds == ["built"], "built once, at start"
                async with httpx.AsyncClient(base_url=server.url) as http:
                    response = await http.get("/api/openapi.json")
                assert response.status_code == 200
                assert "/api/v1/calls/{call_id}" in response.json()["paths"]
                assert builds == ["built"], "serving the document built it again"
            finally:
                await server.stop()

    asyncio.run(main())
