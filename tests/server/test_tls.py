"""``kvshim serve --tls-cert/--tls-key``: TLS with ALPN h2, used by a real Deno."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from kvshim.runtime.deno import locate_deno
from kvshim.server import DatabaseService

TOKEN = "tls-token"
SCRIPT = """
const kv = await Deno.openKv(Deno.args[0]);
await kv.set(["tls"], "over h2");
const got = (await kv.get(["tls"])).value;
if (got !== "over h2") { console.error(got); Deno.exit(1); }
kv.close();
console.log("OK");
"""


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A test CA, and a server certificate and key for 127.0.0.1 signed by it."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: cannot make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    cert, key, csr, ext = (folder / n for n in ("cert.pem", "key.pem", "leaf.csr", "ext.cnf"))
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    commands = [
        ["req", "-x509", *ec, "-days", "1", "-subj", "/CN=kvshim-ca",
         "-keyout", str(ca_key), "-out", str(ca)],
        ["req", *ec, "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(csr)],
        ["x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-days", "1", "-extfile", str(ext), "-out", str(cert)],
    ]  # fmt: skip
    for command in commands:
        subprocess.run([openssl, *command], check=True, capture_output=True, timeout=60)
    return ca, cert, key


def alpn_protocol(url: str, cert: Path) -> str | None:
    host, port = url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(cert))
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            return tls.selected_alpn_protocol()


async def test_tls_offers_h2_and_serves_deno(
    certificate: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    ca, cert, key = certificate
    async with DatabaseService(
        memory=True, access_token=TOKEN, tls_cert=cert, tls_key=key
    ) as service:
        assert service.url.startswith("https://")
        assert await asyncio.to_thread(alpn_protocol, service.url, ca) == "h2"
        binary = locate_deno()
        if binary is None:
            pytest.skip("the deno binary is not installed (pip install deno)")
        script = tmp_path / "tls.ts"
        script.write_text(SCRIPT)
        env = {
            **os.environ,
            "DENO_KV_ACCESS_TOKEN": TOKEN,
            "DENO_DIR": str(tmp_path / "deno_dir"),
            "NO_COLOR": "1",
        }
        command = [binary, "run", "--unstable-kv", "-A", "--cert", str(ca), str(script)]
        command.append(service.database_url("db"))
        process = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, err = await asyncio.wait_for(process.communicate(), 100)
        assert process.returncode == 0, err.decode()
        assert out.decode().strip() == "OK"
