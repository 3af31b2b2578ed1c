"""A KV Connect client: the backend behind ``open_kv("http(s)://HOST:PORT/<db>")``.

It speaks KV Connect versions 2 and 3 (kv-connect.md) to ``kvshim serve``, denokv or Deno
Deploy over one reused aiohttp session (HTTP/1.1 keep-alive). The access token comes from
``KVSHIM_ACCESS_TOKEN`` or ``DENO_KV_ACCESS_TOKEN``. Temporary failures (5xx, connection
errors) are retried with exponential backoff; metadata is re-fetched before its token expires
and once after a 401/403; a 400 becomes ``KvTypeError`` with the server's message.

Queues: KV Connect has no way to receive messages. Enqueues are sent (the server stores them,
as denokv does, for a process that opens the database directly), but ``dequeue_next`` — and so
``listen_queue`` — raises ``KvValueError`` with ``QUEUES_UNSUPPORTED``.
"""

from __future__ import annotations

import asyncio
import datetime
import http
import logging
from collections.abc import AsyncGenerator, Mapping, Sequence

import aiohttp
from yarl import URL

from kvshim.errors import BackendError, KvClosedError, KvTypeError, KvValueError, ProtocolError
from kvshim.model import AtomicWrite, Consistency, RawEntry, ReadRange
from kvshim.protocol import convert, metadata

logger = logging.getLogger("kvshim.remote")

TOKEN_VARIABLES = ("KVSHIM_ACCESS_TOKEN", "DENO_KV_ACCESS_TOKEN")
MISSING_TOKEN = (
    "Missing DENO_KV_ACCESS_TOKEN environment variable. Please set it to your access token "
    "from https://console.deno.com"
)
QUEUES_UNSUPPORTED = "KV Connect does not support queues: listen on a directly opened database"
MAX_ATTEMPTS = 8
_RETRYABLE = (aiohttp.ClientError, OSError, TimeoutError)
_CALL_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10)
_WATCH_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10)


def access_token(environ: Mapping[str, str]) -> str:
    """The token from ``environ``; Deno's error if there is none."""
    for name in TOKEN_VARIABLES:
        if environ.get(name):
            return environ[name]
    raise KvValueError(MISSING_TOKEN)


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): 50 ms doubling up to 2 s."""
    return float(min(0.05 * 2**attempt, 2.0))


class RemoteBackend:
    """A database on a KV Connect server."""

    def __init__(self, url: str, token: str, session: aiohttp.ClientSession) -> None:
        self._url = URL(url)
        self._base = self._url
        self._token = token
        self._session = session
        self._metadata: metadata.Metadata | None = None
        self._refresh_at = datetime.datetime.min.replace(tzinfo=datetime.UTC)
        self._refresh_lock = asyncio.Lock()
        self._closed = asyncio.Event()

    @classmethod
    async def open(cls, url: str, environ: Mapping[str, str]) -> RemoteBackend:
        """Connect and do the metadata exchange now, as ``Deno.openKv`` does."""
        token = access_token(environ)
        backend = cls(url, token, aiohttp.ClientSession())
        try:
            await backend._refresh()
        except BaseException:
            await backend._session.close()
            raise
        return backend

    # --- metadata ------------------------------------------------------------------------

    async def _refresh(self) -> metadata.Metadata:
        headers = {"authorization": f"Bearer {self._token}", "content-type": "application/json"}
        body = b'{"supportedVersions":[2,3]}'
        try:
            async with self._session.post(
                self._url, data=body, headers=headers, timeout=_CALL_TIMEOUT
            ) as response:
                payload, status = await response.read(), response.status
                # Endpoints are relative to where the metadata came from, after redirects.
                base = response.url
        except _RETRYABLE as error:
            raise BackendError(
                f"Could not open Deno KV database: failed to connect to '{self._url}': {error}"
            ) from error
        if status != 200:
            raise BackendError(
                f"Could not open Deno KV database: the metadata endpoint at '{self._url}' "
                f"responded with status {_status_text(status)}: {payload.decode(errors='replace')}"
            )
        try:
            meta = metadata.Metadata.from_json(payload)
        except ProtocolError as error:
            raise BackendError(f"Could not open Deno KV database: {error}") from None
        now = datetime.datetime.now(datetime.UTC)
        margin = min(datetime.timedelta(seconds=60), (meta.expires_at - now) / 2)
        self._metadata, self._refresh_at, self._base = meta, meta.expires_at - margin, base
        return meta

    async def _current(self) -> metadata.Metadata:
        if self._metadata is not None and datetime.datetime.now(datetime.UTC) < self._refresh_at:
            return self._metadata
        async with self._refresh_lock:
            if (
                self._metadata is not None
                and datetime.datetime.now(datetime.UTC) < self._refresh_at
            ):
                return self._metadata
            return await self._refresh()

    def _request(self, meta: metadata.Metadata, method: str) -> tuple[str, dict[str, str]]:
        endpoint = str(self._base.join(URL(meta.endpoint)))
        headers = {
            "authorization": f"Bearer {meta.token}",
            "content-type": "application/x-protobuf",
            "x-denokv-database-id": str(meta.database_id),
            "x-denokv-version": str(meta.version),
        }
        return f"{endpoint}/{method}", headers

    # --- data path -----------------------------------------------------------------------

    async def _call(self, method: str, body: bytes) -> tuple[bytes, metadata.Metadata]:
        """POST ``body`` to the data path, retrying temporary failures; the reply and the
        metadata it was sent under."""
        refreshed = False
        problem = ""
        for attempt in range(MAX_ATTEMPTS):
            self._ensure_open()
            meta = await self._current()
            url, headers = self._request(meta, method)
            try:
                async with self._session.post(
                    url, data=body, headers=headers, timeout=_CALL_TIMEOUT
                ) as response:
                    payload = await response.read()
            except _RETRYABLE as error:
                problem = f"{type(error).__name__}: {error}"
            else:
                if response.status == 200:
                    return payload, meta
                text = payload.decode(errors="replace")
                problem = f"status={_status_text(response.status)}: {text}"
                if response.status in (401, 403) and not refreshed:
                    refreshed, self._metadata = True, None
                    continue
                if response.status == 400:
                    raise KvTypeError(text)
                if response.status < 500:
                    raise BackendError(f"KV Connect failed to call '{url}' ({problem})")
            logger.warning("KV Connect call to %s failed (%s); retrying", method, problem)
            await self._sleep(backoff(attempt))
        raise BackendError(
            f"KV Connect failed to call '{method}' after {MAX_ATTEMPTS} attempts: {problem}"
        )

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._closed.wait(), seconds)
        except TimeoutError:
            pass

    def _ensure_open(self) -> None:
        if self._closed.is_set():
            raise KvClosedError()

    async def snapshot_read(
        self, ranges: Sequence[ReadRange], consistency: Consistency = "strong"
    ) -> list[list[RawEntry]]:
        # Like Deno's client, every read goes to the strong endpoint, so "eventual" is strong.
        reply, meta = await self._call("snapshot_read", convert.snapshot_read_to_wire(ranges))
        try:
            return convert.snapshot_read_output_from_wire(
                reply, len(ranges), version=meta.version, strong=consistency == "strong"
            )
        except ProtocolError as error:
            raise BackendError(str(error)) from None

    async def atomic_write(self, write: AtomicWrite) -> bytes | None:
        reply, _ = await self._call("atomic_write", convert.atomic_write_to_wire(write))
        try:
            return convert.atomic_write_output_from_wire(reply)
        except ProtocolError as error:
            raise BackendError(str(error)) from None

    async def dequeue_next(self) -> None:
        raise KvValueError(QUEUES_UNSUPPORTED)

    async def watch(self, keys: Sequence[bytes]) -> AsyncGenerator[list[RawEntry | None], None]:
        """The watch stream, reconnected with backoff when it breaks.

        Every frame is passed on (a write that leaves a key as it was still emits), except the
        snapshot that opens a reconnected stream when it equals the last state seen.
        """
        body = convert.watch_to_wire(keys)
        last: list[RawEntry | None] | None = None
        attempt = 0
        while not self._closed.is_set():
            first = last is not None
            try:
                async for state in self._watch_stream(body, len(keys), last):
                    attempt = 0
                    if not (first and state == last):
                        last = state
                        yield state
                    first = False
            except _RETRYABLE + (asyncio.IncompleteReadError, ProtocolError) as error:
                logger.warning("KV Connect watch stream broke (%s); reconnecting", error)
            if self._closed.is_set():
                return
            await self._sleep(backoff(attempt))
            attempt += 1

    async def _watch_stream(
        self, body: bytes, count: int, last: list[RawEntry | None] | None
    ) -> AsyncGenerator[list[RawEntry | None], None]:
        meta = await self._current()
        url, headers = self._request(meta, "watch")
        async with self._session.post(
            url, data=body, headers=headers, timeout=_WATCH_TIMEOUT
        ) as response:
            if response.status != 200:
                text = (await response.read()).decode(errors="replace")
                if response.status == 400:
                    raise KvTypeError(text)
                if response.status in (401, 403):
                    self._metadata = None
                raise aiohttp.ClientResponseError(
                    response.request_info, (), status=response.status, message=text
                )
            state = last or [None] * count
            while True:
                header = await self._read(response, 4)
                if header is None:
                    return
                size = int.from_bytes(header, "little")
                if size == 0:
                    continue  # keep-alive ping
                frame = await self._read(response, size)
                if frame is None:
                    return
                changes = convert.watch_output_from_wire(frame, count)
                state = [
                    entry if changed else old
                    for (changed, entry), old in zip(changes, state, strict=True)
                ]
                yield state

    async def _read(self, response: aiohttp.ClientResponse, size: int) -> bytes | None:
        """``size`` bytes of the stream, or ``None`` once the backend is closed."""
        read = asyncio.ensure_future(response.content.readexactly(size))
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait({read, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
        if not read.done():
            read.cancel()
            return None
        return read.result()

    async def close(self) -> None:
        self._closed.set()
        await self._session.close()


def _status_text(status: int) -> str:
    """``401 Unauthorized``: the code and its standard phrase."""
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)
