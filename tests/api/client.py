"""A synchronous face over ``httpx.AsyncClient`` with an ASGI transport: requests go straight
into the app on one private event loop (no socket), from a chosen source address."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI


class ApiClient:
    def __init__(self, app: FastAPI, *, source: str = "127.0.0.1", token: str | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=app, client=(source, 40000))
        self._client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        self.token = token

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return self._loop.run_until_complete(self._client.request(method, url, headers=headers, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()
