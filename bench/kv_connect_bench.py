"""Rough hot-path numbers for ``kvshim serve``: sequential and concurrent set/get over KV Connect.

Starts ``kvshim serve --memory`` (a subprocess), then measures kvshim's remote backend
(HTTP/1.1 keep-alive) and, if deno is installed, the real Deno client (HTTP/2 prior knowledge).

Run: python bench/kv_connect_bench.py [n]
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import kvshim

TOKEN = "bench-token"
DENO_SCRIPT = """
const kv = await Deno.openKv(Deno.args[0]);
const n = Number(Deno.args[1]);
const run = async (name, f) => { const t = performance.now(); await f();
  const rate = Math.round(n / ((performance.now() - t) / 1000));
  console.log(`deno (h2c)    ${name}: ${rate} ops/s`); };
await run("set_seq", async () => { for (let i = 0; i < n; i++) await kv.set(["k", i], i); });
await run("get_seq", async () => { for (let i = 0; i < n; i++) await kv.get(["k", i]); });
await run("set_concurrent(64)", async () => {
  for (let i = 0; i < n; i += 64) await Promise.all(
    Array.from({ length: 64 }, (_, j) => kv.set(["c", i + j], j)));
});
kv.close();
"""


async def python_client(url: str, n: int) -> None:
    kv = await kvshim.open_kv(url, environ={"KVSHIM_ACCESS_TOKEN": TOKEN})

    async def run(name: str, body: object) -> None:
        start = time.perf_counter()
        await body  # type: ignore[misc]
        print(f"kvshim (h1.1) {name}: {n / (time.perf_counter() - start):,.0f} ops/s")

    async def set_seq() -> None:
        for i in range(n):
            await kv.set(["k", i], i)

    async def get_seq() -> None:
        for i in range(n):
            await kv.get(["k", i])

    async def set_concurrent() -> None:
        for i in range(0, n, 64):
            await asyncio.gather(*(kv.set(["c", i + j], j) for j in range(64)))

    await run("set_seq", set_seq())
    await run("get_seq", get_seq())
    await run("set_concurrent(64)", set_concurrent())
    await kv.close()


def main(n: int) -> None:
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo), "KVSHIM_ACCESS_TOKEN": TOKEN}
    command = [sys.executable, "-m", "kvshim", "serve", "--memory", "--port", "0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stdout is not None
        base = server.stdout.readline().removeprefix("Listening on ").strip()
        asyncio.run(python_client(f"{base}/py", n))
        deno = shutil.which("deno")
        if deno:
            with tempfile.NamedTemporaryFile("w", suffix=".js", delete=False) as script:
                script.write(DENO_SCRIPT)
            env = {**os.environ, "DENO_KV_ACCESS_TOKEN": TOKEN, "NO_COLOR": "1"}
            subprocess.run(
                [deno, "run", "--unstable-kv", "-A", script.name, f"{base}/deno", str(n)],
                env=env,
                check=True,
            )
            os.unlink(script.name)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
