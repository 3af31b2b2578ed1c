"""A real Deno (``Deno.openKv("http://…")``) against a real ``kvshim serve`` subprocess.

The Deno script (tests/deno/kv_connect_client.ts) runs one scenario on Deno's own local
database and on kvshim's server and fails on any difference; values cross between Python and
Deno in both directions.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

import kvshim
from kvshim import BigInt, KvU64
from kvshim.runtime.deno import locate_deno

SCRIPT = Path(__file__).parent.parent / "deno" / "kv_connect_client.ts"

# The same values as ``fromPython`` in the script.
VALUES: dict[str, Any] = {
    "str": "héllo 😀",
    "int": 42,
    "float": 2.5,
    "bigint": BigInt(2**70),
    "object": {"a": [1, "x", None, True], "b": {"c": -1.5}},
    "bytes": b"\x00\x01\xff",
    "u64": KvU64(7),
    "date": datetime.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=datetime.UTC),
    "set": {"a", "b"},
    "null": None,
    "bool": False,
}


def run_deno(
    script: Path, url: str, token: str, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """``deno run --unstable-kv -A script url`` with ``DENO_KV_ACCESS_TOKEN``."""
    binary = locate_deno()
    if binary is None:
        pytest.skip("the deno binary is not installed (pip install deno)")
    env = {
        **os.environ,
        "DENO_KV_ACCESS_TOKEN": token,
        "DENO_DIR": str(tmp_path / "deno_dir"),
        "DENO_NO_UPDATE_CHECK": "1",
        "NO_COLOR": "1",
    }
    command = [binary, "run", "--unstable-kv", "-A", str(script), url]
    return subprocess.run(command, env=env, timeout=100, capture_output=True, text=True)


async def exchange_values_with_deno(url: str, token: str, tmp_path: Path) -> None:
    """Python writes ``VALUES`` under ``["py", …]``; the Deno scenario checks them against
    Deno's own local database and writes them back under ``["deno", …]``; Python reads those
    back equal, and of the same type (a JS number read back is an ``int`` when integral)."""
    kv = await kvshim.open_kv(url, environ={"KVSHIM_ACCESS_TOKEN": token})
    try:
        for name, value in VALUES.items():
            await kv.set(["py", name], value)
        result = run_deno(SCRIPT, url, token, tmp_path)
        assert result.returncode == 0, result.stderr + result.stdout
        assert result.stdout.strip().endswith("OK")
        for name, value in VALUES.items():
            got = (await kv.get(["deno", name])).value
            assert got == value, name
            assert type(got) is type(value) or name == "int", name
    finally:
        await kv.close()


@pytest.mark.deno
async def test_deno_client_matches_local_and_exchanges_values(
    kv_connect_server: Any, tmp_path: Path
) -> None:
    url = f"{kv_connect_server.url}/deno{uuid.uuid4().hex[:8]}"
    await exchange_values_with_deno(url, kv_connect_server.token, tmp_path)
