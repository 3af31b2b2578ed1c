"""The shipped examples, as a newcomer runs them: ``kvshim run examples/NAME.py`` in a real Git
repository, driven with real HTTP requests (and, for the live page, a real headless Chromium);
and how ``kvshim run`` stops while a request is in flight."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from browser_support import chromium, needs_browser
from kvshim_process import REPO_ROOT, Running

import kvshim

try:
    from playwright.async_api import expect
except ImportError:  # pragma: no cover - depends on the machine
    pass

EXAMPLES = REPO_ROOT / "examples"


@pytest.fixture
def start(repo: Path) -> Iterator[Callable[..., Running]]:
    """``start(EXAMPLE, *args)``: the example copied into the repository, under ``kvshim run``."""
    started: list[Running] = []

    def start_(example: str, *args: str) -> Running:
        shutil.copy(EXAMPLES / example, repo / example)
        started.append(Running(repo, example, *args))
        return started[-1]

    yield start_
    for running in started:
        running.close()


# --- counter.py ------------------------------------------------------------------------------


@pytest.mark.parametrize("storage", ["memory", "file"])
def test_the_counter_counts_every_concurrent_request(
    start: Callable[..., Running], repo: Path, storage: str
) -> None:
    args = ("--database", str(repo / "counter.sqlite3")) if storage == "file" else ()
    running = start("counter.py", *args)

    def hit(_: int) -> int:
        status, body = running.get()
        assert status == 200, body
        return int(body)

    with ThreadPoolExecutor(max_workers=32) as pool:
        seen = list(pool.map(hit, range(300)))
    # Each answer is the count at its read (others may have added since its sum)...
    assert min(seen) >= 1 and max(seen) == 300
    assert hit(0) == 301  # ...and no increment was lost
    assert running.stop() == 0


# --- todo.py ---------------------------------------------------------------------------------


def test_todo_pages_through_todos_with_a_cursor(start: Callable[..., Running]) -> None:
    running = start("todo.py")
    titles = [f"task {i}" for i in range(30)]  # some made within one millisecond
    for title in titles:
        status, body = running.request("POST", "/todos", {"title": title})
        assert status == 201, body
    pages, cursor = [], ""
    while True:
        status, body = running.get(f"/todos?limit=7&cursor={cursor}")
        assert status == 200, body
        page = json.loads(body)
        pages.append([todo["title"] for todo in page["todos"]])
        if page["cursor"] is None:
            break
        cursor = page["cursor"]
    assert pages == [titles[i : i + 7] for i in range(0, 30, 7)]  # oldest first, none twice


def test_todo_refuses_a_change_made_from_a_stale_version(start: Callable[..., Running]) -> None:
    running = start("todo.py")
    created = json.loads(running.request("POST", "/todos", {"title": "  write docs "})[1])
    assert created["title"] == "write docs" and created["done"] is False
    path, first = f"/todos/{created['id']}", created["version"]
    assert json.loads(running.get(path)[1]) == created  # the version is the entry's

    status, body = running.request("PATCH", path, {"done": True, "version": first})
    assert status == 200, body
    done = json.loads(body)
    assert done["done"] is True and done["version"] > first
    assert json.loads(running.get(path)[1]) == done

    # A second client still holding the first version: refused, told what is there now.
    status, body = running.request("PATCH", path, {"title": "other", "version": first})
    assert status == 409
    assert json.loads(body) == {"error": "changed by someone else", "current": done}
    assert json.loads(running.get(path)[1])["title"] == "write docs"

    assert running.request("DELETE", path)[0] == 204
    assert running.get(path)[0] == 404
    assert running.request("PATCH", path, {"done": False, "version": done["version"]})[0] == 404


CURRENT = object()  # in a body below: the todo's current version


@pytest.mark.parametrize(
    ("method", "path", "body", "raw", "message"),
    [
        ("POST", "/todos", None, b"not json", "the body must be JSON"),
        ("POST", "/todos", [1], None, "the body must be a JSON object"),
        ("POST", "/todos", {"title": " "}, None, "title must be a non-empty string"),
        ("GET", "/todos?limit=0", None, None, "limit must be a number from 1 to 100"),
        ("GET", "/todos?limit=-3", None, None, "limit must be a number from 1 to 100"),
        ("GET", "/todos?limit=ten", None, None, "limit must be a number from 1 to 100"),
        ("GET", "/todos?limit=101", None, None, "limit must be a number from 1 to 100"),
        ("GET", "/todos?cursor=zzz", None, None, "cursor: invalid cursor"),
        ("PATCH", "/todos/{id}", {"done": True}, None, "version must be the todo's version"),
        ("PATCH", "/todos/{id}", {"version": "zz"}, None, "version: Invalid check"),
        ("PATCH", "/todos/{id}", {"done": "no", "version": CURRENT}, None, "done must be true"),
        ("PATCH", "/todos/{id}", {"title": 3, "version": CURRENT}, None, "title must be"),
    ],
)
def test_todo_answers_bad_requests_with_400_and_why(
    start: Callable[..., Running],
    method: str,
    path: str,
    body: dict[str, object] | None,
    raw: bytes | None,
    message: str,
) -> None:
    running = start("todo.py")
    todo = json.loads(running.request("POST", "/todos", {"title": "keep me"})[1])
    if isinstance(body, dict) and body.get("version") is CURRENT:
        body = {**body, "version": todo["version"]}
    status, text = running.request(method, path.format(id=todo["id"]), body, raw=raw)
    assert (status, message in text) == (400, True), text
    assert json.loads(running.get(f"/todos/{todo['id']}")[1]) == todo  # nothing changed


# --- live.py ---------------------------------------------------------------------------------


def _read_events(url: str, count: int, into: list[dict[str, object]]) -> None:
    """Read ``count`` server-sent events from ``url`` (in a thread)."""
    with urllib.request.urlopen(url, timeout=10) as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        for line in stream:
            if line.startswith(b"data: "):
                into.append(json.loads(line[len(b"data: ") :]))
                if len(into) == count:
                    return


def _wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_live_streams_the_current_message_then_every_change(
    start: Callable[..., Running],
) -> None:
    running = start("live.py")
    events: list[dict[str, object]] = []
    reader = threading.Thread(target=_read_events, args=(running.url + "/events", 3, events))
    reader.start()
    versions = []
    for message in ("hello", "again"):
        _wait_until(lambda: len(events) == 1 + len(versions))  # not two changes in one event
        status, body = running.request("POST", "/message", {"message": message})
        assert status == 200, body
        versions.append(json.loads(body)["version"])
    reader.join(timeout=10)
    assert events == [
        {"message": None, "version": None},
        {"message": "hello", "version": versions[0]},
        {"message": "again", "version": versions[1]},
    ]
    assert running.request("POST", "/message", raw=b"{") == (400, "the body must be JSON")
    status, text = running.request("POST", "/message", {"text": "hi"})
    assert (status, text) == (400, "message must be a string")


@needs_browser
async def test_live_page_shows_a_message_posted_in_another_tab(
    start: Callable[..., Running],
) -> None:
    running = await asyncio.to_thread(start, "live.py")
    async with chromium() as browser:
        context = await browser.new_context(base_url=running.url)
        writer, reader = await context.new_page(), await context.new_page()
        for page in (writer, reader):
            page.set_default_timeout(10_000)
            await page.goto("/")
            await expect(page.locator("#message")).to_have_text("(nothing yet)")
        await writer.fill("input[name=message]", "hello from tab one")
        await writer.click("button")
        for page in (reader, writer):
            await expect(page.locator("#message")).to_have_text("hello from tab one")
        await expect(writer.locator("input[name=message]")).to_have_value("")  # form reset


# --- stopping --------------------------------------------------------------------------------

SLOW = """
import asyncio
import kvshim
from aiohttp import web

async def handler(request):
    kv = await kvshim.open_kv()
    print("handling", flush=True)
    await asyncio.sleep(1.0)
    await kv.set(["finished"], True)
    return web.Response(text="finished")
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_lets_the_request_in_flight_finish_and_closes_the_file(
    repo: Path, signum: signal.Signals
) -> None:
    (repo / "slow.py").write_text(SLOW)
    database = repo / "slow.sqlite3"
    running = Running(repo, "slow.py", "--database", str(database))
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            response = pool.submit(running.get)
            running.wait_for("handling")
            running.process.send_signal(signum)
            assert response.result(timeout=10) == (200, "finished")
        assert running.process.wait(timeout=20) == 0
    finally:
        running.close()
    # Every connection closed: SQLite checkpointed the WAL into the file and removed it.
    assert not database.with_name(database.name + "-wal").exists()
    assert asyncio.run(_read(database, ["finished"])) is True


async def _read(path: Path, key: list[str]) -> object:
    async with await kvshim.open_kv(path) as kv:
        return (await kv.get(key)).value
