"""``kvshim serve`` on the wire: auth, names, version negotiation, limits, HTTP versions, watch.

Each test starts a real in-process ``DatabaseService`` (hypercorn on port 0) and talks to it
with aiohttp (HTTP/1.1) or the ``h2`` library (HTTP/2 prior knowledge).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import h2.config
import h2.connection
import h2.events
import pytest

import kvshim
from kvshim.protocol import datapath_pb2 as pb
from kvshim.server import DatabaseService, TokenRegistry

TOKEN = "server-wide-token"
V3 = json.dumps({"supportedVersions": [1, 2, 3]})


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[DatabaseService]:
    async with DatabaseService(
        data_dir=tmp_path, memory=True, access_token=TOKEN, ping_interval=0.2
    ) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    http: aiohttp.ClientSession,
    url: str,
    body: bytes | str = V3,
    token: str | None = TOKEN,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["authorization"] = f"Bearer {token}"
    async with http.post(url, data=body, headers=all_headers) as response:
        return response.status, await response.read()


async def exchange(
    http: aiohttp.ClientSession, service: DatabaseService, name: str, token: str = TOKEN
) -> dict[str, Any]:
    status, body = await post(http, service.database_url(name), token=token)
    assert status == 200, body
    return dict(json.loads(body))


async def data_call(
    http: aiohttp.ClientSession,
    service: DatabaseService,
    name: str,
    method: str,
    message: bytes,
    token: str = TOKEN,
) -> tuple[int, bytes]:
    meta = await exchange(http, service, name, token)
    headers = {
        "x-denokv-version": str(meta["version"]),
        "x-denokv-database-id": meta["databaseId"],
        "content-type": "application/x-protobuf",
    }
    url = f"{service.url}{meta['endpoints'][0]['url']}/{method}"
    return await post(http, url, message, meta["token"], headers)


def set_request(key: bytes, data: bytes = b"v") -> bytes:
    value = pb.KvValue(data=data, encoding=pb.VE_BYTES)
    mutation = pb.Mutation(key=key, value=value, mutation_type=pb.M_SET)
    return pb.AtomicWrite(mutations=[mutation]).SerializeToString()


def read_request(*ranges: pb.ReadRange) -> bytes:
    return pb.SnapshotRead(ranges=list(ranges)).SerializeToString()


# --- metadata and version negotiation --------------------------------------------------


async def test_metadata_reply_shape(service: DatabaseService, http: aiohttp.ClientSession) -> None:
    meta = await exchange(http, service, "app")
    assert meta["version"] == 3
    assert str(uuid.UUID(meta["databaseId"])) == meta["databaseId"]
    assert meta["endpoints"] == [{"url": "/app/v2", "consistency": "strong"}]
    assert meta["token"] and meta["expiresAt"].endswith("Z")


@pytest.mark.parametrize(
    ("body", "version"),
    [
        ('{"supportedVersions":[1,2,3]}', 3),
        ('{"supportedVersions":[1,2]}', 2),
        ('{"supportedVersions":[2,3,4]}', 3),
        ('{"supportedVersions":[3],"extra":true}', 3),
        ('{"supportedVersions":[4,2]}', 2),
    ],
)
async def test_highest_common_version(
    service: DatabaseService, http: aiohttp.ClientSession, body: str, version: int
) -> None:
    status, reply = await post(http, service.database_url("app"), body)
    assert status == 200
    assert json.loads(reply)["version"] == version


@pytest.mark.parametrize(
    "body", ['{"supportedVersions":[1]}', "", "{}", '{"supportedVersions":[4]}']
)
async def test_no_common_version_is_400(
    service: DatabaseService, http: aiohttp.ClientSession, body: str
) -> None:
    status, reply = await post(http, service.database_url("app"), body)
    assert status == 400
    assert b"requires protocol version 2 or 3" in reply


async def test_unparsable_metadata_request_is_400(
    service: DatabaseService, http: aiohttp.ClientSession
) -> None:
    status, reply = await post(http, service.database_url("app"), "not json")
    assert (status, reply) == (
        400,
        b"The server requires at least protocol version 2. Use Deno 1.38.0 or newer.",
    )


async def test_root_url_is_the_default_database(
    service: DatabaseService, http: aiohttp.ClientSession
) -> None:
    status, body = await post(http, service.url)
    assert status == 200
    assert json.loads(body)["endpoints"][0]["url"] == "/default/v2"


# --- authentication ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "header"),
    [(None, None), ("wrong-token", None), (None, "Basic abc"), (None, "Bearer")],
)
async def test_missing_or_wrong_token_is_401(
    service: DatabaseService, http: aiohttp.ClientSession, token: str | None, header: str | None
) -> None:
    headers = {"authorization": header} if header else None
    status, _ = await post(http, service.database_url("app"), token=token, headers=headers)
    assert status == 401


async def test_scheme_is_case_insensitive(
    service: DatabaseService, http: aiohttp.ClientSession
) -> None:
    headers = {"authorization": f"bEaReR {TOKEN}"}
    status, _ = await post(http, service.database_url("app"), token=None, headers=headers)
    assert status == 200


async def test_database_token_reaches_only_its_database(
    service: DatabaseService, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    registry = TokenRegistry(tmp_path / "tokens.json")
    for name in ("a", "b"):
        status, _ = await data_call(http, service, name, "atomic_write", set_request(b"\x02k\x00"))
        assert status == 200
    info, token_a = registry.create("a")
    assert token_a not in (tmp_path / "tokens.json").read_text()
    # A's token reads and writes A ...
    status, _ = await data_call(
        http, service, "a", "atomic_write", set_request(b"\x02x\x00"), token_a
    )
    assert status == 200
    # ... but neither reads nor writes B, at the metadata exchange or on the data path.
    status, _ = await post(http, service.database_url("b"), token=token_a)
    assert status == 401
    meta_a = await exchange(http, service, "a", token_a)
    headers = {"x-denokv-version": "3", "x-denokv-database-id": meta_a["databaseId"]}
    for method, body in [
        ("atomic_write", set_request(b"\x02x\x00")),
        ("snapshot_read", read_request(pb.ReadRange(start=b"", end=b"\xff", limit=10))),
    ]:
        status, _ = await post(http, f"{service.url}/b/v2/{method}", body, token_a, headers)
        assert status == 401
    # Revoked: no longer accepted.
    registry.revoke(info.id)
    status, _ = await post(http, service.database_url("a"), token=token_a)
    assert status == 401


async def test_only_the_server_token_creates_databases(
    service: DatabaseService, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    registry = TokenRegistry(tmp_path / "tokens.json")
    _, token = registry.create("later")
    status, body = await post(http, service.database_url("later"), token=token)
    assert status == 404, body
    assert [t.database for t in registry.list()] == ["later"]
    await exchange(http, service, "later")  # the server-wide token creates it
    await exchange(http, service, "later", token)


def test_registry_stores_only_hashes(tmp_path: Path) -> None:
    registry = TokenRegistry(tmp_path / "tokens.json")
    info, token = registry.create("db")
    text = (tmp_path / "tokens.json").read_text()
    assert token not in text and info.sha256 in text
    assert registry.grants(token, "db") and not registry.grants(token, "other")
    assert registry.list("db") == [info] and registry.list("other") == []
    with pytest.raises(kvshim.KvValueError):
        registry.revoke("nope")
    with pytest.raises(kvshim.KvValueError):
        registry.create("../db")


# --- names and routes -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/..", "/%2e%2e", "/a$b", "/.hidden", "/a..b", "/" + "x" * 65, "/a/b", "/a%2Fb/"]
)
async def test_bad_database_names_are_400(
    service: DatabaseService, http: aiohttp.ClientSession, path: str
) -> None:
    url = aiohttp.client.URL(service.url + path, encoded=True)
    async with http.post(url, data=V3, headers={"authorization": f"Bearer {TOKEN}"}) as response:
        assert response.status == 400, path
        assert "Invalid database name" in await response.text()


async def test_a_bad_name_with_a_wrong_token_is_401(
    service: DatabaseService, http: aiohttp.ClientSession
) -> None:
    url = aiohttp.client.URL(service.url + "/bad..name", encoded=True)
    async with http.post(url, data=V3, headers={"authorization": "Bearer nope"}) as response:
        assert response.status == 401


@pytest.mark.parametrize(
    "path", ["/app/v3/snapshot_read", "/app/v2", "/app/v2/", "/a/b/c/d", "/v2/watch"]
)
async def test_unknown_routes_are_404(
    service: DatabaseService, http: aiohttp.ClientSession, path: str
) -> None:
    # kv-connect.md §7.2: anything but the metadata and data-path routes (Deno's client gives
    # up on a 404 at once, where a 400 would make it refresh and retry).
    assert await post(http, service.url + path) == (404, b"Resource not found.")


async def test_unknown_method_and_verb(
    service: DatabaseService, http: aiohttp.ClientSession
) -> None:
    status, _ = await post(http, f"{service.url}/app/v2/enqueue", b"")
    assert status == 404
    async with http.get(service.database_url("app")) as response:
        assert response.status == 405


# --- data path checks and limits --------------------------------------------------------


async def test_data_path_headers_are_checked(
    service: DatabaseService, http: aiohttp.ClientSession
) -> None:
    meta = await exchange(http, service, "app")
    body = read_request(pb.ReadRange(start=b"", end=b"\xff", limit=1))
    url = f"{service.url}/app/v2/snapshot_read"
    good = {"x-denokv-version": "3", "x-denokv-database-id": meta["databaseId"]}
    assert (await post(http, url, body, headers=good))[0] == 200
    assert (await post(http, url.replace("/app/", "//app//"), body, headers=good))[0] == 200
    wrong_version = {**good, "x-denokv-version": "1"}
    assert (await post(http, url, body, headers=wrong_version))[0] == 400
    wrong_id = {**good, "x-denokv-database-id": str(uuid.uuid4())}
    assert (await post(http, url, body, headers=wrong_id)) == (400, b"Invalid database id.")
    plain = meta["databaseId"].replace("-", "")  # a UUID, in either of its usual spellings
    for presented in (plain, plain.upper()):
        headers = {**good, "x-denokv-database-id": presented}
        assert (await post(http, url, body, headers=headers))[0] == 200
    for presented in (f"-{plain}--", "{" + meta["databaseId"] + "}", plain + "0"):
        headers = {**good, "x-denokv-database-id": presented}
        assert (await post(http, url, body, headers=headers)) == (400, b"Invalid database id.")


def too_many_mutations() -> bytes:
    mutations = [pb.Mutation(key=b"\x02k\x00", mutation_type=pb.M_DELETE) for _ in range(1001)]
    return pb.AtomicWrite(mutations=mutations).SerializeToString()


@pytest.mark.parametrize(
    ("method", "body", "message"),
    [
        ("snapshot_read", b"\xff\xff", "Request protobuf is invalid"),
        (
            "snapshot_read",
            read_request(*[pb.ReadRange(end=b"\xff", limit=1)] * 11),
            "Too many ranges",
        ),
        ("snapshot_read", read_request(pb.ReadRange(end=b"\xff", limit=0)), "Invalid limit"),
        (
            "snapshot_read",
            read_request(*[pb.ReadRange(end=b"\xff", limit=600)] * 2),
            "Too many entries",
        ),
        (
            "snapshot_read",
            read_request(pb.ReadRange(end=b"\x02" * 2050, limit=1)),
            "Key too large for read",
        ),
        ("atomic_write", set_request(b"\x02" * 2049), "Key too large for write"),
        ("atomic_write", set_request(b""), "key cannot be empty"),
        ("atomic_write", set_request(b"\x02k\x00", b"x" * 65537), "Value too large"),
        ("atomic_write", too_many_mutations(), "Too many mutations"),
        (
            "atomic_write",
            pb.AtomicWrite(
                checks=[pb.Check(key=b"\x02k\x00", versionstamp=b"123")]
            ).SerializeToString(),
            "Invalid versionstamp.",
        ),
        (
            "atomic_write",
            pb.AtomicWrite(
                mutations=[pb.Mutation(key=b"\x02k\x00", mutation_type=pb.M_UNSPECIFIED)]
            ).SerializeToString(),
            "Invalid mutation kind",
        ),
        (
            "atomic_write",
            pb.AtomicWrite(
                mutations=[
                    pb.Mutation(
                        key=b"\x02k\x00",
                        value=pb.KvValue(data=b"\x01", encoding=pb.VE_V8),
                        mutation_type=pb.M_SUM,
                    )
                ]
            ).SerializeToString(),
            "needs an 8-byte U64 operand",
        ),
        (
            "atomic_write",
            pb.AtomicWrite(
                mutations=[
                    pb.Mutation(
                        key=b"\x02k\x00",
                        value=pb.KvValue(data=b"x", encoding=7),  # type: ignore[arg-type]
                        mutation_type=pb.M_SET,
                    )
                ]
            ).SerializeToString(),
            "Unknown value encoding 7",
        ),
        (
            "watch",
            pb.Watch(keys=[pb.WatchKey(key=b"\x02k\x00")] * 11).SerializeToString(),
            "Too many keys (max 10)",
        ),
        (
            "atomic_write",  # stored, a 7-byte LE64 value would crash Deno's client on read
            pb.AtomicWrite(
                mutations=[
                    pb.Mutation(
                        key=b"\x02k\x00",
                        value=pb.KvValue(data=b"\x01" * 7, encoding=pb.VE_LE64),
                        mutation_type=pb.M_SET,
                    )
                ]
            ).SerializeToString(),
            "Invalid value: an LE64 value is exactly 8 bytes",
        ),
        (
            "atomic_write",
            pb.AtomicWrite(
                enqueues=[pb.Enqueue(payload=b"\xff\x0f\x49\x02", backoff_schedule=[1] * 11)]
            ).SerializeToString(),
            "Invalid backoffSchedule, max 10 intervals allowed",
        ),
        (
            "atomic_write",
            pb.AtomicWrite(
                enqueues=[
                    pb.Enqueue(payload=b"\xff\x0f\x49\x02", keys_if_undelivered=[b"\x02k\x00"] * 11)
                ]
            ).SerializeToString(),
            "Too many keys_if_undelivered (max 10)",
        ),
    ],
)
async def test_limits_are_400_with_a_message(
    service: DatabaseService,
    http: aiohttp.ClientSession,
    method: str,
    body: bytes,
    message: str,
) -> None:
    status, reply = await data_call(http, service, "app", method, body)
    assert status == 400
    assert message in reply.decode()


async def test_a_rejected_request_creates_no_database(tmp_path: Path) -> None:
    async with (
        DatabaseService(data_dir=tmp_path, access_token=TOKEN) as service,
        aiohttp.ClientSession() as http,
    ):
        some_id = uuid.uuid4().hex
        rejected = [
            ("/ghost/v2/snapshot_read", b"", {"x-denokv-database-id": some_id}),  # no version
            (
                "/ghost2/v2/atomic_write",
                b"",
                {"x-denokv-version": "3", "x-denokv-database-id": some_id},
            ),
            ("/ghost3", b"[not json", {}),
        ]
        for path, body, headers in rejected:
            assert (await post(http, service.url + path, body, headers=headers))[0] == 400
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("ghost")]


async def test_a_database_file_that_cannot_be_opened_is_a_500_with_a_message(
    tmp_path: Path,
) -> None:
    (tmp_path / "bad.sqlite3").write_bytes(b"this is not a SQLite database" * 200)
    async with (
        DatabaseService(data_dir=tmp_path, access_token=TOKEN) as service,
        aiohttp.ClientSession() as http,
    ):
        status, body = await post(http, service.database_url("bad"))
    assert (status, body) == (500, b"Database 'bad' is unavailable; see the server log.")


async def test_rejected_write_changes_nothing(
    service: DatabaseService, http: aiohttp.ClientSession
) -> None:
    value = pb.KvValue(data=b"x" * 65537, encoding=pb.VE_BYTES)
    body = pb.AtomicWrite(
        mutations=[
            pb.Mutation(
                key=b"\x02a\x00",
                value=pb.KvValue(data=b"1", encoding=pb.VE_BYTES),
                mutation_type=pb.M_SET,
            ),
            pb.Mutation(key=b"\x02b\x00", value=value, mutation_type=pb.M_SET),
        ]
    ).SerializeToString()
    assert (await data_call(http, service, "app", "atomic_write", body))[0] == 400
    status, reply = await data_call(
        http, service, "app", "snapshot_read", read_request(pb.ReadRange(end=b"\xff", limit=10))
    )
    output = pb.SnapshotReadOutput.FromString(reply)
    assert status == 200 and [len(r.values) for r in output.ranges] == [0]


async def test_snapshot_read_output(service: DatabaseService, http: aiohttp.ClientSession) -> None:
    status, reply = await data_call(http, service, "app", "atomic_write", set_request(b"\x02a\x00"))
    written = pb.AtomicWriteOutput.FromString(reply)
    assert status == 200 and written.status == pb.AW_SUCCESS and len(written.versionstamp) == 10
    body = read_request(
        pb.ReadRange(start=b"\x02z\x00", end=b"\xff", limit=5),
        pb.ReadRange(start=b"\x02a\x00", end=b"\x02a\x00\x00", limit=1),
    )
    status, reply = await data_call(http, service, "app", "snapshot_read", body)
    output = pb.SnapshotReadOutput.FromString(reply)
    assert output.status == pb.SR_SUCCESS and output.read_is_strongly_consistent
    assert [len(r.values) for r in output.ranges] == [0, 1]  # empty ranges keep their place
    entry = output.ranges[1].values[0]
    assert (entry.key, entry.value, entry.encoding) == (b"\x02a\x00", b"v", pb.VE_BYTES)
    assert entry.versionstamp == written.versionstamp


# --- HTTP/1.1 and HTTP/2 prior knowledge on one port -------------------------------------


def h2_post(url: str, path: str, body: bytes) -> tuple[int, bytes, str]:
    """One POST over HTTP/2 with prior knowledge (the Deno CLI's way), on a raw socket."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        stream = conn.get_next_available_stream_id()
        headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", f"{host}:{port}"),
            (":path", path),
            ("authorization", f"Bearer {TOKEN}"),
            ("content-length", str(len(body))),
        ]
        conn.send_headers(stream, headers)
        conn.send_data(stream, body, end_stream=True)
        sock.sendall(conn.data_to_send())
        status, data = 0, b""
        while True:
            chunk = sock.recv(65536)
            assert chunk, "connection closed"
            for event in conn.receive_data(chunk):
                if isinstance(event, h2.events.ResponseReceived):
                    status = int(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    data += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, h2.events.StreamEnded):
                    return status, data, "h2"
            sock.sendall(conn.data_to_send())


async def test_h1_and_h2c_on_the_same_port(
    service: DatabaseService, http: aiohttp.ClientSession
) -> None:
    status, body = await post(http, service.database_url("app"))
    assert status == 200 and json.loads(body)["version"] == 3
    status, body, _ = await asyncio.to_thread(h2_post, service.url, "/app", V3.encode())
    assert status == 200 and json.loads(body)["version"] == 3


# --- watch --------------------------------------------------------------------------------


async def test_watch_stream_frames_and_pings(
    service: DatabaseService, http: aiohttp.ClientSession
) -> None:
    meta = await exchange(http, service, "app")
    headers = {
        "authorization": f"Bearer {meta['token']}",
        "x-denokv-version": "3",
        "x-denokv-database-id": meta["databaseId"],
    }
    body = pb.Watch(keys=[pb.WatchKey(key=b"\x02a\x00"), pb.WatchKey(key=b"\x02b\x00")])
    url = f"{service.url}/app/v2/watch"
    async with http.post(url, data=body.SerializeToString(), headers=headers) as response:
        assert response.status == 200
        assert response.headers["content-type"] == "application/octet-stream"

        async def frame() -> pb.WatchOutput | None:
            size = int.from_bytes(await response.content.readexactly(4), "little")
            if size == 0:
                return None
            return pb.WatchOutput.FromString(await response.content.readexactly(size))

        first = await asyncio.wait_for(frame(), 5)
        assert first is not None and first.status == pb.SR_SUCCESS
        assert [(k.changed, k.HasField("entry_if_changed")) for k in first.keys] == [
            (True, False),
            (True, False),
        ]
        assert await asyncio.wait_for(frame(), 5) is None  # a ping after 0.2 s of quiet
        await data_call(http, service, "app", "atomic_write", set_request(b"\x02b\x00", b"B"))
        update = await asyncio.wait_for(frame(), 5)
        while update is None:
            update = await asyncio.wait_for(frame(), 5)
        # Every key is sent as changed (Deno reads changed=false as "deleted").
        assert [k.changed for k in update.keys] == [True, True]
        assert not update.keys[0].HasField("entry_if_changed")
        assert update.keys[1].entry_if_changed.value == b"B"


async def test_remote_watch_sees_other_clients(service: DatabaseService) -> None:
    environ = {"KVSHIM_ACCESS_TOKEN": TOKEN}
    url = service.database_url("shared")
    a = await kvshim.open_kv(url, environ=environ)
    b = await kvshim.open_kv(url, environ=environ)
    try:
        stream = a.watch([["k"]])
        assert [e.value for e in await asyncio.wait_for(anext(stream), 5)] == [None]
        await b.set(["k"], "from b")
        assert [e.value for e in await asyncio.wait_for(anext(stream), 5)] == ["from b"]
    finally:
        await a.close()
        await b.close()


async def test_kvshim_db_tokens_grant_their_timeline_database_only(tmp_path: Path) -> None:
    from kvshim.databases.api import Databases

    home, folder = tmp_path / "home", tmp_path / "instance"
    environ = {"KVSHIM_HOME": str(home)}
    registry = Databases(environ=environ)
    registry.provision("main", location=str(folder))
    registry.assign("main", "shop")
    for timeline in ("production", "git-branch/x"):
        registry.provision_timeline("shop", timeline)
    _, token = registry.create_token("main", "shop", "production")
    async with DatabaseService(data_dir=folder, access_token=TOKEN, environ=environ) as service:
        async with aiohttp.ClientSession() as http:
            meta = await exchange(http, service, "shop-production", token)
            assert meta["endpoints"][0]["url"] == "/shop-production/v2"
            status, _ = await post(http, service.database_url("shop--x"), token=token)
            assert status == 401
        kv = await kvshim.open_kv(
            service.database_url("shop-production"), environ={"KVSHIM_ACCESS_TOKEN": token}
        )
        await kv.set(["k"], "via a kvshim db token")
        await kv.close()
    # The served file is the instance's own database file.
    direct = await kvshim.open_kv(registry.database_url_for("shop", "production"))
    assert (await direct.get(["k"])).value == "via a kvshim db token"
    await direct.close()


@pytest.mark.parametrize("memory", [True, False], ids=["memory", "sqlite"])
async def test_idle_databases_are_closed_and_reopened(tmp_path: Path, memory: bool) -> None:
    from kvshim.model import AtomicWrite, EncodedValue, Mutation, MutationKind, ReadRange
    from kvshim.server import Databases

    databases = Databases(data_dir=tmp_path, memory=memory, idle_close=0.05)
    value = EncodedValue(b"v", 3)
    async with databases.use("a") as backend:
        await backend.atomic_write(
            AtomicWrite(mutations=[Mutation(b"\x02k\x00", MutationKind.SET, value)])
        )
        await asyncio.sleep(0.2)
        assert "a" in databases._opening  # in use: never closed
    for _ in range(100):
        if "a" not in databases._opening:
            break
        await asyncio.sleep(0.05)
    assert "a" not in databases._opening and await databases.exists("a")
    async with databases.use("a") as backend:
        found = await backend.snapshot_read([ReadRange(b"", b"\xff", 10)])
        assert [e.value for e in found[0]] == [value]
    await databases.close()


async def test_debug_logging_never_shows_tokens(
    service: DatabaseService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    status, _, _ = await asyncio.to_thread(h2_post, service.url, "/app", V3.encode())
    assert status == 200
    assert "HTTP/2 POST /app -> 200" in caplog.text
    assert TOKEN not in caplog.text
