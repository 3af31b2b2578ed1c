"""The remote backend's own behaviour: tokens, open errors, retries, metadata refresh, queues.

Failures are injected by a real aiohttp proxy (port 0) in front of a real ``DatabaseService``.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

import kvshim
from kvshim.backends.remote import MISSING_TOKEN, QUEUES_UNSUPPORTED
from kvshim.protocol import datapath_pb2 as pb
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


@asynccontextmanager
async def serving(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """Serve every POST with ``handler`` on a free port; yields the base URL."""
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def proxy(service: DatabaseService) -> AsyncIterator[Proxy]:
    proxy = Proxy(service.url)
    async with serving(proxy.handle) as proxy.url:
        yield proxy


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


# --- servers that answer differently from kvshim serve (kv-connect.md §2.2, §2.4, §3.2) -----


@dataclass
class Variant:
    """A front for ``upstream`` that answers like another server: protocol version 2 (no read
    ``status``), reads that are not strongly consistent, or metadata behind a redirect with a
    relative endpoint. Requests arrive for database ``db``."""

    upstream: str
    url: str = ""
    version: int = 3
    strong: bool = True
    redirect: bool = False
    paths: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.paths.append(request.path)
        if self.redirect and request.path == "/old/db":
            raise web.HTTPTemporaryRedirect("/new/db")
        upstream_path = request.path.removeprefix("/new").replace("/sub/v2/", "/db/v2/")
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith(("auth", "x-"))}
        if "x-denokv-version" in headers:
            headers["x-denokv-version"] = "3"  # the real server behind speaks 3
        async with aiohttp.ClientSession() as session:
            async with session.post(
                self.upstream + upstream_path, data=await request.read(), headers=headers
            ) as response:
                payload, status = await response.read(), response.status
        if status == 200 and upstream_path == "/db":
            meta = json.loads(payload)
            meta["version"] = self.version
            if self.redirect:
                meta["endpoints"][0]["url"] = "sub/v2"  # relative to /new/db: /new/sub/v2
            payload = json.dumps(meta).encode()
        elif status == 200 and upstream_path.endswith("/snapshot_read"):
            output = pb.SnapshotReadOutput.FromString(payload)
            if self.version < 3:
                output.ClearField("status")
            output.read_is_strongly_consistent = self.strong
            payload = output.SerializeToString()
        return web.Response(body=payload, status=status)


@pytest.fixture
async def variant(service: DatabaseService) -> AsyncIterator[Variant]:
    front = Variant(service.url)
    async with serving(front.handle) as front.url:
        yield front


async def test_a_version_2_server_is_read_without_status(variant: Variant) -> None:
    variant.version = 2
    url = f"{variant.url}/db"
    async with await kvshim.open_kv(url, environ={"KVSHIM_ACCESS_TOKEN": TOKEN}) as kv:
        await kv.set(["k"], "v")
        assert (await kv.get(["k"])).value == "v"


async def test_strong_reads_need_a_strongly_consistent_server(variant: Variant) -> None:
    variant.strong = False
    url = f"{variant.url}/db"
    async with await kvshim.open_kv(url, environ={"KVSHIM_ACCESS_TOKEN": TOKEN}) as kv:
        await kv.set(["k"], "v")
        message = "Strong consistency reads are not available for this database"
        with pytest.raises(kvshim.BackendError, match=message):
            await kv.get(["k"])
        assert (await kv.get(["k"], consistency="eventual")).value == "v"


async def test_endpoints_resolve_against_the_redirected_metadata_url(variant: Variant) -> None:
    variant.redirect = True
    url = f"{variant.url}/old/db"
    async with await kvshim.open_kv(url, environ={"KVSHIM_ACCESS_TOKEN": TOKEN}) as kv:
        await kv.set(["k"], "v")
        assert (await kv.get(["k"])).value == "v"
    assert "/new/sub/v2/atomic_write" in variant.paths
    assert "/new/sub/v2/snapshot_read" in variant.paths
