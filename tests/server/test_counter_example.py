"""examples/counter.ts (Deno) on a ``kvshim serve`` database, shared with Python."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import kvshim
from kvshim.runtime.deno import locate_deno

EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "counter.ts"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_http(url: str, process: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            assert process.poll() is None, "the Deno app exited"
            try:
                async with http.head(url):
                    return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never answered")


@pytest.mark.deno
async def test_counter_example_shares_data_with_python(
    kv_connect_server: Any, tmp_path: Path
) -> None:
    binary = locate_deno()
    if binary is None:
        pytest.skip("the deno binary is not installed (pip install deno)")
    database = f"{kv_connect_server.url}/counter{uuid.uuid4().hex[:8]}"
    kv = await kvshim.open_kv(database)
    await kv.set(["requests"], 40)  # Python's writes are what Deno reads ...
    port = free_port()
    env = {
        **os.environ,
        "DENO_KV_DEFAULT_PATH": database,
        "DENO_KV_ACCESS_TOKEN": kv_connect_server.token,
        "PORT": str(port),
        "DENO_DIR": str(tmp_path / "deno_dir"),
        "DENO_NO_UPDATE_CHECK": "1",
        "NO_COLOR": "1",
    }
    command = [binary, "run", "--unstable-kv", "-A", str(EXAMPLE)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        app = f"http://127.0.0.1:{port}/"
        await wait_for_http(app, process)  # (this HEAD request counts as one: 41)
        async with aiohttp.ClientSession() as http:
            for expected in (42, 43):
                async with http.get(app) as response:
                    assert await response.json() == {"requests": expected}
        # ... and Deno's are what Python reads.
        assert (await kv.get(["requests"])).value == 43
    finally:
        process.terminate()
        process.wait(10)
        await kv.close()
