"""The dashboard's live feed over Server-Sent Events, through a real HTTP server on loopback:
the concurrency the node reports now, calls per second from the node's counter, and the
sparkline; the stream ends for a revoked session."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from tests.web.conftest import PASSWORD, WebEnv, csrf_of, live_call


@contextlib.asynccontextmanager
async def serving(env: WebEnv) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(env.app, log_config=None, lifespan="off", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


async def _login(http: httpx.AsyncClient) -> None:
    page = await http.get("/manage/login")
    response = await http.post(
        "/manage/login", data={"csrf": csrf_of(page.text), "name": "alice", "password": PASSWORD}
    )
    assert response.status_code == 303


async def _events(http: httpx.AsyncClient, count: int) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    async with http.stream("GET", "/manage/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                out.append(json.loads(line[6:]))
                if len(out) == count:
                    break
    return out


@pytest.mark.timeout(30)
def test_the_feed_carries_the_live_figures(web_env: WebEnv) -> None:
    async def main() -> None:
        web_env.web.sampler.period = 0.05
        web_env.live.live = [live_call("a", None), live_call("b", None, answered=False)]
        web_env.live.phones = 3
        async with serving(web_env) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
            await _login(http)
            page = await http.get("/manage/")
            assert 'data-live-url="/manage/events"' in page.text and 'id="concurrency">2<' in page.text
            first, *_ = await _events(http, 1)
            assert (first["concurrency"], first["answered"], first["online_phones"]) == (2, 1, 3)
            web_env.live.live = [live_call(f"c{i}", None) for i in range(5)]
            web_env.live.started = 40
            await asyncio.sleep(0.2)  # a few samples of the node
            (later,) = await _events(http, 1)
            assert later["concurrency"] == 5 and later["income"] == "0.00"
            spark = later["spark"]
            assert isinstance(spark, list) and spark and spark[-1] == 5
            # a revoked session: the feed refuses to start
            await http.post("/manage/logout", data={"csrf": csrf_of((await http.get("/manage/")).text)})
            refused = await http.get("/manage/events")
            assert refused.status_code == 303

    asyncio.run(main())
