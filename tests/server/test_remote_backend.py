"""The remote backend's own behaviour: tokens, open errors, retries, metadata refresh, queues.

Failures are injected by a real aiohttp proxy (port 0) in front of a real ``DatabaseService``.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

import kvshim
from kvshim.backends.remote import MISSING_TOKEN, QUEUES_UNSUPPORTED
from kvshim.server import DatabaseService

TOKEN = "remote-backend-token"


@dataclass
class Proxy:
    """Forwards to ``upstream``; fails the next ``fail_next`` data calls with 503 and can
    shorten the metadata lifetime."""

    upstream: str
    url: str = ""
    fail_next: int = 0
    lifetime_s: float | None = None
    calls: list[tuple[str, int]] = field(default_factory=list)
    peers: set[object] = field(default_factory=set)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        assert request.transport is not None
        self.peers.add(request.transport.get_extra_info("peername"))
        if request.path.count("/") > 1 and self.fail_next > 0:
            self.fail_next -= 1
            self.calls.append((request.path, 503))
            return web.Response(status=503, text="try again")
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith(("auth", "x-"))}
        async with aiohttp.ClientSession() as session:
            async with session.post(self.upstream + request.path, data=body, headers=headers) as r:
                payload, status = await r.read(), r.status
                content_type = r.headers.get("content-type", "text/plain")
        if request.path.count("/") == 1 and status == 200 and self.lifetime_s is not None:
            meta = json.loads(payload)
            expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(
                seconds=self.lifetime_s
            )
            meta["expiresAt"] = expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            payload = json.dumps(meta).encode()
        self.calls.append((request.path, status))
        return web.Response(body=payload, status=status, headers={"content-type": content_type})


@pytest.fixture
async def service() -> AsyncIterator[DatabaseService]:
    async with DatabaseService(memory=True, access_token=TOKEN) as running:
        yield running


@pytest.fixture
async def proxy(service: DatabaseService) -> AsyncIterator[Proxy]:
    proxy = Proxy(service.url)
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    proxy.url = f"http://127.0.0.1:{port}"
    yield proxy
    await runner.cleanup()


async def test_missing_token_is_denos_error(service: DatabaseService) -> None:
    with pytest.raises(kvshim.KvValueError) as caught:
        await kvshim.open_kv(service.database_url("db"), environ={})
    assert str(caught.value) == MISSING_TOKEN


@pytest.mark.parametrize("variable", ["KVSHIM_ACCESS_TOKEN", "DENO_KV_ACCESS_TOKEN"])
async def test_token_variables(service: DatabaseService, variable: str) -> None:
    kv = await kvshim.open_kv(service.database_url("db"), environ={variable: TOKEN})
    await kv.set(["k"], 1)
    assert (await kv.get(["k"])).value == 1
    await kv.close()


async def test_wrong_token_fails_at_open(service: DatabaseService) -> None:
    url = service.database_url("db")
    with pytest.raises(kvshim.BackendError) as caught:
        await kvshim.open_kv(url, environ={"KVSHIM_ACCESS_TOKEN": "nope"})
    assert str(caught.value) == (
        f"Could not open Deno KV database: the metadata endpoint at '{url}' responded with "
        "status 401 Unauthorized: Invalid access token."
    )


async def test_unreachable_server_fails_at_open() -> None:
    with pytest.raises(kvshim.BackendError, match="^Could not open Deno KV database: failed"):
        await kvshim.open_kv("http://127.0.0.1:1/db", environ={"KVSHIM_ACCESS_TOKEN": TOKEN})


async def test_temporary_failures_are_retried(proxy: Proxy) -> None:
    kv = await kvshim.open_kv(f"{proxy.url}/db", environ={"KVSHIM_ACCESS_TOKEN": TOKEN})
    try:
        proxy.fail_next = 3
        assert (await kv.set(["k"], "v")).ok
        statuses = [status for path, status in proxy.calls if path.endswith("atomic_write")]
        assert statuses == [503, 503, 503, 200]
        proxy.fail_next = 2
        assert (await kv.get(["k"])).value == "v"
    finally:
        await kv.close()


@pytest.mark.slow
async def test_permanent_failure_gives_up(proxy: Proxy) -> None:
    kv = await kvshim.open_kv(f"{proxy.url}/db", environ={"KVSHIM_ACCESS_TOKEN": TOKEN})
    try:
        proxy.fail_next = 100
        with pytest.raises(kvshim.BackendError, match="after 8 attempts"):
            await kv.get(["k"])
    finally:
        await kv.close()


async def test_metadata_is_refreshed_before_expiry(proxy: Proxy) -> None:
    proxy.lifetime_s = 0.6  # refreshed once half the lifetime is left
    kv = await kvshim.open_kv(f"{proxy.url}/db", environ={"KVSHIM_ACCESS_TOKEN": TOKEN})
    try:
        await kv.get(["k"])
        metadata_calls = sum(1 for path, _ in proxy.calls if path == "/db")
        assert metadata_calls == 1
        await asyncio.sleep(0.4)
        await kv.get(["k"])
        assert sum(1 for path, _ in proxy.calls if path == "/db") == 2
    finally:
        await kv.close()


async def test_connections_are_reused(proxy: Proxy) -> None:
    kv = await kvshim.open_kv(f"{proxy.url}/db", environ={"KVSHIM_ACCESS_TOKEN": TOKEN})
    try:
        for i in range(20):
            await kv.set(["k", i], i)
        assert len(proxy.calls) == 21
        assert len(proxy.peers) == 1  # one keep-alive connection for all 21 requests
    finally:
        await kv.close()


async def test_listen_queue_is_refused_but_enqueue_is_sent(service: DatabaseService) -> None:
    kv = await kvshim.open_kv(service.database_url("db"), environ={"KVSHIM_ACCESS_TOKEN": TOKEN})
    try:
        assert (await kv.enqueue("stored for a local listener")).ok
        with pytest.raises(kvshim.KvValueError, match=QUEUES_UNSUPPORTED):
            await kv.listen_queue(lambda message: None)
    finally:
        await kv.close()
