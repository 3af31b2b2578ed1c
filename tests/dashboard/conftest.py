"""A real dashboard on a real aiohttp test server over a registry in a temporary folder."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from kvshim.dashboard import make_dashboard_app
from kvshim.databases import Databases


class Dashboard:
    """A test client that behaves like the dashboard's own pages: same origin, CSRF token."""

    def __init__(self, client: TestClient[Any, Any], databases: Databases) -> None:
        self.client = client
        self.databases = databases

    @property
    def origin(self) -> str:
        return str(self.client.make_url("/")).rstrip("/")

    async def csrf(self) -> str:
        cookies = self.client.session.cookie_jar.filter_cookies(self.client.make_url("/"))
        if "kvshim_csrf" not in cookies:
            (await self.client.get("/")).release()
            cookies = self.client.session.cookie_jar.filter_cookies(self.client.make_url("/"))
        return cookies["kvshim_csrf"].value

    async def post(self, path: str, **fields: str) -> ClientResponse:
        data = {"csrf": await self.csrf(), **fields}
        return await self.client.post(
            path, data=data, headers={"Origin": self.origin}, allow_redirects=False
        )

    async def text(self, path: str, status: int = 200, **params: str) -> str:
        response = await self.client.get(path, params=params)
        body = await response.text()
        assert response.status == status, body
        return body


@pytest.fixture
def databases(tmp_path: Path) -> Databases:
    return Databases(tmp_path / "home", environ={})


@pytest.fixture
async def dashboard(databases: Databases) -> AsyncIterator[Dashboard]:
    async with TestClient(TestServer(make_dashboard_app(databases))) as client:
        yield Dashboard(client, databases)


def form_value(html: str, form_id: str, name: str) -> str:
    """The value of input ``name`` in the form with id ``form_id``."""
    form = html.split(f'id="{form_id}"', 1)[1].split("</form>", 1)[0]
    match = re.search(rf'name="{name}" value="([^"]*)"', form)
    assert match is not None, form
    return match.group(1)
