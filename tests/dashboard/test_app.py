"""The dashboard against a real registry, real SQLite databases and a real aiohttp server."""

from __future__ import annotations

import html
import json
from pathlib import Path

import markupsafe
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

import kvshim
from kvshim.cli import main
from kvshim.dashboard import make_dashboard_app, mount_dashboard
from kvshim.databases import Databases
from tests.dashboard.conftest import Dashboard, form_value


def _timeline(databases: Databases, app: str = "shop") -> str:
    databases.provision("shop-kv")
    databases.assign("shop-kv", app)
    return databases.ensure_database("shop-kv", app, "production").url


async def test_provision_and_assign_through_the_page_show_connected(dashboard: Dashboard) -> None:
    response = await dashboard.post("/provision", name="shop-kv", engine="kv")
    assert response.status == 303
    assert "Unassigned" in await dashboard.text("/")
    assert (await dashboard.post("/instances/shop-kv/assign", app="shop")).status == 303
    page = await dashboard.text("/")
    assert 'data-state="Connected"' in page and "Assigned shop-kv to app shop" in page
    assert [i.apps for i in dashboard.databases.list()] == [("shop",)]
    await dashboard.post("/instances/shop-kv/unassign", app="shop")
    assert dashboard.databases.status("shop-kv").apps == ()


async def test_errors_from_the_api_are_shown(dashboard: Dashboard) -> None:
    response = await dashboard.post("/provision", name="Bad Name!")
    assert response.status == 303
    page = await dashboard.text("/")
    assert "Could not provision: Invalid database name" in page
    assert "Invalid database name" not in await dashboard.text("/")  # shown once
    assert "no database" in (await dashboard.text("/instances/nope", status=404)).lower()


async def test_post_without_csrf_token_or_from_another_origin_is_refused(
    dashboard: Dashboard,
) -> None:
    origin = {"Origin": dashboard.origin}
    token = await dashboard.csrf()
    without = await dashboard.client.post("/provision", data={"name": "a"}, headers=origin)
    wrong = await dashboard.client.post(
        "/provision", data={"name": "b", "csrf": "x" * 43}, headers=origin
    )
    elsewhere = await dashboard.client.post(
        "/provision", data={"name": "c", "csrf": token}, headers={"Origin": "http://evil.test"}
    )
    no_origin = await dashboard.client.post(
        "/provision", data={"name": "d", "csrf": token}, skip_auto_headers=["Origin"]
    )
    assert [r.status for r in (without, wrong, elsewhere, no_origin)] == [403] * 4
    assert "CSRF" in await without.text() and "evil.test" in await elsewhere.text()
    assert dashboard.databases.list() == []
    put = await dashboard.client.put(
        "/provision", data={"name": "e", "csrf": token}, headers=origin
    )
    assert put.status == 405


async def test_security_headers_are_strict(dashboard: Dashboard) -> None:
    response = await dashboard.client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in await response.text()  # no inline script anywhere


async def test_stored_markup_is_shown_escaped_never_as_html(dashboard: Dashboard) -> None:
    url = _timeline(dashboard.databases)
    evil = "<script>alert(1)</script>"
    async with await kvshim.open_kv(url) as kv:
        await kv.set([evil], {"html": evil, "attr": '"><img src=x onerror=alert(1)>'})
    base = "/instances/shop-kv/databases/shop-production"
    listing = await dashboard.text(f"{base}/keys")
    entry = await dashboard.text(f"{base}/entry", key=json.dumps([evil]))
    for page in (listing, entry):
        assert evil not in page and "<img" not in page
        assert str(markupsafe.escape(json.dumps(evil))) in page
    assert "onerror" in entry  # shown, as text


async def test_entry_view_shows_types_bytes_versionstamp_and_expiry(dashboard: Dashboard) -> None:
    url = _timeline(dashboard.databases)
    async with await kvshim.open_kv(url) as kv:
        done = await kv.set(
            ["n", 1, kvshim.BigInt(1), b"\x01"], kvshim.KvU64(258), expire_in=60_000
        )
    page = await dashboard.text(
        "/instances/shop-kv/databases/shop-production/entry", key='["n", 1, 1n, b"01"]'
    )
    assert 'class="t-string">&#34;n&#34;</span>' in page
    assert '<span class="t-number">1</span>' in page and '<span class="t-bigint">1n</span>' in page
    assert '<span class="t-bytes">b&#34;01&#34;</span>' in page
    assert "u64(258)" in page and "KvU64" in page and "LE64" in page
    assert "02 01 00 00 00 00 00 00" in page
    assert done.versionstamp in page
    assert "never" not in page.split('id="expiry">')[1][:40]


async def test_set_edit_and_a_stale_edit_is_refused(dashboard: Dashboard) -> None:
    url = _timeline(dashboard.databases)
    base = "/instances/shop-kv/databases/shop-production"
    created = await dashboard.post(f"{base}/entry", key='["requests"]', value="1", versionstamp="")
    assert created.status == 303
    page = await dashboard.text(f"{base}/entry", key='["requests"]')
    loaded = form_value(page, "edit-form", "versionstamp")
    async with await kvshim.open_kv(url) as kv:
        assert (await kv.get(["requests"])).value == 1
        await kv.set(["requests"], 2)  # someone else writes meanwhile
        stale = await dashboard.post(
            f"{base}/entry", key='["requests"]', value="100", versionstamp=loaded
        )
        body = await stale.text()
        assert stale.status == 409 and "Not saved: this entry changed" in body
        assert (await kv.get(["requests"])).value == 2
        again = await dashboard.post(
            f"{base}/entry", key='["requests"]', value="1", versionstamp=""
        )
        assert again.status == 409  # "create" never overwrites an existing entry
        current = form_value(body, "edit-form", "versionstamp")
        ok = await dashboard.post(
            f"{base}/entry", key='["requests"]', value="3n", versionstamp=current
        )
        assert ok.status == 303
        assert (await kv.get(["requests"])).value == kvshim.BigInt(3)


async def test_bad_typed_input_is_refused_and_kept(dashboard: Dashboard) -> None:
    _timeline(dashboard.databases)
    base = "/instances/shop-kv/databases/shop-production"
    response = await dashboard.post(f"{base}/entry", key='["a"]', value='{"x": 1,}')
    body = await response.text()
    assert response.status == 400 and "Invalid literal at position" in body
    assert "{&#34;x&#34;: 1,}" in body
    assert "expected a key" not in await dashboard.text(f"{base}/keys", prefix='["a"]')
    assert "Invalid literal" in await dashboard.text(f"{base}/keys", status=400, prefix="oops")


async def test_delete_checks_the_versionstamp(dashboard: Dashboard) -> None:
    url = _timeline(dashboard.databases)
    base = "/instances/shop-kv/databases/shop-production"
    async with await kvshim.open_kv(url) as kv:
        first = await kv.set(["k"], 1)
        await kv.set(["k"], 2)
        refused = await dashboard.post(
            f"{base}/entry/delete", key='["k"]', versionstamp=first.versionstamp or ""
        )
        assert refused.status == 409 and (await kv.get(["k"])).value == 2
        current = (await kv.get(["k"])).versionstamp or ""
        deleted = await dashboard.post(f"{base}/entry/delete", key='["k"]', versionstamp=current)
        assert deleted.status == 303 and (await kv.get(["k"])).versionstamp is None


async def test_keys_are_listed_by_prefix_a_page_at_a_time(dashboard: Dashboard) -> None:
    url = _timeline(dashboard.databases)
    async with await kvshim.open_kv(url) as kv:
        for i in range(60):
            await kv.set(["users", i], i)
        await kv.set(["other"], 0)
    base = "/instances/shop-kv/databases/shop-production"
    first = await dashboard.text(f"{base}/keys", prefix='["users"]')
    assert first.count('class="t-string">&#34;users&#34;') == 50 and "Next page" in first
    cursor = first.split("cursor=")[1].split('"')[0]
    second = await dashboard.text(f"{base}/keys", prefix='["users"]', cursor=html.unescape(cursor))
    assert second.count('class="t-string">&#34;users&#34;') == 10 and "Next page" not in second
    assert '<span class="t-number">59</span>' in second and "other" not in second


async def test_live_mode_streams_changes(dashboard: Dashboard) -> None:
    url = _timeline(dashboard.databases)
    async with await kvshim.open_kv(url) as kv:
        await kv.set(["live"], "a")
        response = await dashboard.client.get(
            "/instances/shop-kv/databases/shop-production/entry/watch", params={"key": '["live"]'}
        )
        assert response.headers["Content-Type"] == "text/event-stream"
        first = json.loads((await response.content.readuntil(b"\n\n"))[6:])
        await kv.set(["live"], "<b>")
        second = json.loads((await response.content.readuntil(b"\n\n"))[6:])
        response.close()
    assert first["tokens"] == [["string", '"a"']] and first["exists"]
    assert second["tokens"] == [["string", '"<b>"']]
    assert second["versionstamp"] != first["versionstamp"]


async def test_timelines_backup_copy_and_delete_confirmation(dashboard: Dashboard) -> None:
    url = _timeline(dashboard.databases)
    async with await kvshim.open_kv(url) as kv:
        await kv.set(["a"], 1)
    page = await dashboard.text("/instances/shop-kv")
    assert "shop-production" in page and "UTC" in page
    backup = await dashboard.client.get("/instances/shop-kv/databases/shop-production/backup")
    lines = (await backup.text()).splitlines()
    assert "attachment" in backup.headers["Content-Disposition"]
    assert (
        json.loads(lines[0])["format"] == "kvshim-backup" and json.loads(lines[-1])["entries"] == 1
    )
    made = await dashboard.post("/instances/shop-kv/timelines", app="shop", timeline="git-branch/x")
    assert made.status == 303
    copied = await dashboard.post(
        "/instances/shop-kv/copy", app="shop", source="production", target="git-branch/x"
    )
    assert copied.status == 303
    assert "Copied 1 entries" in await dashboard.text("/instances/shop-kv")
    confirm = await dashboard.text("/instances/shop-kv/delete")
    assert "shop-production" in confirm and "download backup" in confirm
    wrong = await dashboard.post("/instances/shop-kv/delete", confirm="shop")
    assert wrong.status == 303 and dashboard.databases.list() != []
    right = await dashboard.post("/instances/shop-kv/delete", confirm="shop-kv")
    assert right.status == 303 and dashboard.databases.list() == []
    assert not Path(url).exists()


async def test_admin_token_is_needed_for_every_request(databases: Databases) -> None:
    app = make_dashboard_app(databases, admin_token="s3cret")
    async with TestClient(TestServer(app)) as client:
        api = await client.get("/", allow_redirects=False)
        page = await client.get("/", headers={"Accept": "text/html"}, allow_redirects=False)
        bearer = await client.get("/", headers={"Authorization": "Bearer s3cret"})
        wrong = await client.get("/", headers={"Authorization": "Bearer nope"})
        assert (api.status, page.status, bearer.status, wrong.status) == (401, 303, 200, 401)
        assert page.headers["Location"] == "/login"
        login = await client.get("/login")
        token = client.session.cookie_jar.filter_cookies(client.make_url("/"))["kvshim_csrf"]
        origin = {"Origin": str(client.make_url("/")).rstrip("/")}
        bad = await client.post("/login", data={"token": "x", "csrf": token.value}, headers=origin)
        assert login.status == 200 and bad.status == 403
        ok = await client.post(
            "/login", data={"token": "s3cret", "csrf": token.value}, headers=origin
        )
        assert ok.status == 200 and "Databases" in await ok.text()
        assert "s3cret" not in str(client.session.cookie_jar.filter_cookies(client.make_url("/")))


async def test_mounted_under_a_prefix(databases: Databases) -> None:
    outer = web.Application()
    mount_dashboard(outer, databases, prefix="/admin/db")
    async with TestClient(TestServer(outer)) as client:
        body = await (await client.get("/admin/db/")).text()
        assert 'href="/admin/db/explore"' in body and "/admin/db/static/dashboard.css" in body
        assert (await client.get("/admin/db/static/dashboard.css")).status == 200


def test_cli_refuses_to_bind_elsewhere_without_a_token() -> None:
    result = CliRunner().invoke(main, ["dashboard", "--host", "0.0.0.0", "--port", "0"], env={})
    assert result.exit_code == 2 and "--admin-token" in result.output
