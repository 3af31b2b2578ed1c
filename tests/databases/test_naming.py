"""Timeline database names: Deno's forms, and the documented mapping of odd branch names."""

from __future__ import annotations

import re

import pytest

from kvshim.databases.naming import database_name, timeline_group
from kvshim.errors import TimelineError

SERVE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # what `kvshim serve` accepts


def test_deno_forms() -> None:
    assert database_name("shop", "production") == "shop-production"
    assert database_name("shop", "git-branch/main") == "shop--main"
    assert (
        database_name("shop", "preview/abc") == database_name("shop", "preview") == "shop-preview"
    )
    assert database_name("shop", "local") == "shop-local"


@pytest.mark.parametrize(
    ("a", "b"),
    [("fix/foo", "fix-foo"), ("Fix", "fix"), ("a.b", "a-b"), ("ä", "a"), ("x" * 80, "x" * 81)],
)
def test_lossy_mappings_never_collide(a: str, b: str) -> None:
    names = {database_name("shop", f"git-branch/{a}"), database_name("shop", f"git-branch/{b}")}
    assert len(names) == 2
    for name in names:
        assert len(name.encode()) <= 63 and SERVE_NAME.match(name) and ".." not in name


def test_slash_becomes_dash_plus_hash_of_the_raw_name() -> None:
    name = database_name("shop", "git-branch/feature/x")
    assert re.fullmatch(r"shop--feature-x-[0-9a-f]{8}", name)


def test_app_names_cannot_fake_a_branch_separator() -> None:
    assert database_name("a--b", "git-branch/c") != database_name("a", "git-branch/b--c")


def test_invalid_timelines_are_refused() -> None:
    for bad in ("", "git-branch/", "preview/", "main", "Production"):
        with pytest.raises(TimelineError):
            timeline_group(bad)
