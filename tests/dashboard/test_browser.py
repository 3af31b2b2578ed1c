"""End to end in a real headless Chromium (Debian's ``chromium``, driven by Playwright) against a
real ``kvshim dashboard --port 0`` subprocess over a temporary KVSHIM_HOME.

Skipped only when Chromium or the ``playwright`` package is missing (``browser_support``).
Set ``KVSHIM_SCREENSHOTS=DIR`` to keep screenshots at desktop and phone widths.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import chromium, needs_browser

import kvshim
from kvshim.databases import Databases

ROOT = Path(__file__).resolve().parents[2]
try:
    from playwright.async_api import Page, expect
except ImportError:  # pragma: no cover - depends on the machine
    pass

pytestmark = needs_browser


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def server(home: Path) -> Iterator[str]:
    env = {**os.environ, "KVSHIM_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("KVSHIM_ADMIN_TOKEN", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "kvshim", "dashboard", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Listening on http://127.0.0.1:"), line
        yield line.split()[-1]
    finally:
        process.terminate()
        code = process.wait(timeout=15)
        if process.stdout is not None:
            process.stdout.close()
        assert code == 0


@pytest.fixture
async def page(server: str) -> AsyncIterator[Page]:
    async with chromium() as browser:
        context = await browser.new_context(base_url=server)
        page = await context.new_page()
        page.set_default_timeout(10_000)
        yield page


async def _screenshot(page: Page, name: str) -> None:
    folder = os.environ.get("KVSHIM_SCREENSHOTS")
    if not folder:
        return
    for label, width in (("desktop", 1280), ("phone", 390)):
        await page.set_viewport_size({"width": width, "height": 900})
        await page.screenshot(path=str(Path(folder) / f"{name}-{label}.png"), full_page=True)
    await page.set_viewport_size({"width": 1280, "height": 900})


async def _count_a_request(url: str, times: int = 1) -> None:
    """What examples/counter.py does on each request: an atomic KvU64 sum on ["requests"]."""
    async with await kvshim.open_kv(url) as kv:
        for _ in range(times):
            await kv.atomic().sum(["requests"], kvshim.KvU64(1)).commit()


async def test_provision_assign_browse_stale_edit_and_delete(page: Page, home: Path) -> None:
    await page.goto("/")
    form = page.locator("#provision-form")
    await form.locator("input[name=name]").fill("shop-kv")
    await form.locator("button").click()
    await expect(page.locator(".flash")).to_contain_text("Provisioned shop-kv")
    card = page.locator("section[data-instance=shop-kv]")
    await expect(card.locator(".badge").first).to_have_text("Unassigned")
    await card.locator("input[name=app]").fill("shop")
    await card.get_by_role("button", name="Assign").click()
    await expect(card.locator(".badge").first).to_have_text("Connected")
    await _screenshot(page, "databases")

    url = Databases(home, environ={}).database_url_for("shop", "production")
    await _count_a_request(url, times=3)
    await card.get_by_role("link", name="Timelines").click()
    row = page.locator("tr[data-database=shop-production]")
    await expect(row.locator("td.num").first).to_have_text("1")
    await _screenshot(page, "timelines")
    await row.get_by_role("link", name="Browse").click()
    await page.get_by_role("link", name='["requests"]').click()
    await expect(page.locator("#value")).to_have_text("u64(3)")
    await expect(page.locator("#value-type")).to_have_text("KvU64")
    await _screenshot(page, "entry")

    await page.locator("#live-toggle").check()
    await expect(page.locator("#live-status")).to_contain_text("up to date")
    await _count_a_request(url)  # the counter app gets a request while the page is open
    await expect(page.locator("#value")).to_have_text("u64(4)")
    await expect(page.locator("#live-status")).to_contain_text("changed since this page loaded")

    await page.locator("textarea[name=value]").fill("u64(100)")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#stale")).to_contain_text("Not saved: this entry changed")
    await expect(page.locator("#value")).to_have_text("u64(4)")
    async with await kvshim.open_kv(url) as kv:
        assert (await kv.get(["requests"])).value == kvshim.KvU64(4)
    await page.get_by_role("button", name="Save").click()  # seen the current value: save
    await expect(page.locator(".flash")).to_contain_text("Saved")
    await expect(page.locator("#value")).to_have_text("u64(100)")

    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Delete this entry").click()
    await expect(page.locator(".flash")).to_contain_text('Deleted ["requests"]')

    await page.goto("/")
    await page.get_by_role("link", name="Delete…").click()
    await expect(page.locator("ul.lost")).to_contain_text("shop-production")
    delete = page.get_by_role("button", name="Delete shop-kv and its data")
    await expect(delete).to_be_disabled()
    await page.locator("input[name=confirm]").fill("shop-kv")
    await delete.click()
    await expect(page.locator(".flash")).to_contain_text("Deleted shop-kv and 1 timeline")
    assert Databases(home, environ={}).list() == []


async def test_stored_markup_is_shown_and_never_runs(page: Page, home: Path) -> None:
    databases = Databases(home, environ={})
    databases.provision("shop-kv")
    databases.assign("shop-kv", "shop")
    url = databases.database_url_for("shop", "production")
    evil = "<script>window.pwned = 1</script><img src=x onerror='window.pwned = 2'>"
    async with await kvshim.open_kv(url) as kv:
        await kv.set(["html", evil], {"note": evil})
    errors: list[Any] = []
    page.on("pageerror", lambda error: errors.append(error))
    await page.goto("/instances/shop-kv/databases/shop-production/keys")
    await expect(page.locator("table.keys")).to_contain_text("<script>window.pwned = 1</script>")
    await page.locator("table.keys a").first.click()
    await expect(page.locator("#value")).to_contain_text("onerror='window.pwned = 2'")
    await page.locator("#live-toggle").check()
    await expect(page.locator("#live-status")).to_contain_text("up to date")
    await expect(page.locator("#value")).to_contain_text("<script>")
    assert await page.evaluate("window.pwned") is None
    assert await page.locator("#value img, #value script").count() == 0
    assert errors == []
