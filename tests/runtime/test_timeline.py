"""Timeline detection in each Git state, and the database each timeline maps to."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kvshim.errors import TimelineError
from kvshim.runtime.databases import (
    DatabaseSettings,
    database_url_for,
    prepare_data_dir,
    timeline_slug,
)
from kvshim.runtime.timeline import Timeline, detect_timeline, git_dir

Git = Callable[..., str]


def test_branch(repo: Path) -> None:
    assert detect_timeline(repo, {}) == Timeline("git-branch/main", "branch")


def test_from_a_subfolder(repo: Path) -> None:
    (repo / "sub" / "deeper").mkdir(parents=True)
    assert detect_timeline(repo / "sub" / "deeper", {}).name == "git-branch/main"


def test_branch_with_slashes_and_odd_characters_verbatim(repo: Path, git: Git) -> None:
    git("checkout", "-q", "-b", "feat/ünï-code+x@2")
    assert detect_timeline(repo, {}).name == "git-branch/feat/ünï-code+x@2"


def test_detached_head_is_a_preview(repo: Path, git: Git) -> None:
    commit = git("rev-parse", "HEAD")
    git("checkout", "-q", "--detach")
    assert detect_timeline(repo, {}) == Timeline(f"preview/{commit}", "preview")


def test_unborn_branch(tmp_path: Path, git_at: Callable[[Path], Git]) -> None:
    git_at(tmp_path)("init", "-q", "-b", "trunk")
    assert detect_timeline(tmp_path, {}).name == "git-branch/trunk"


def test_worktree_follows_its_own_head(repo: Path, git: Git, tmp_path: Path) -> None:
    other = tmp_path / "other-tree"
    git("worktree", "add", "-q", "-b", "side/work", str(other))
    assert (other / ".git").is_file()
    assert detect_timeline(other, {}).name == "git-branch/side/work"
    assert detect_timeline(repo, {}).name == "git-branch/main"
    head_dir = git_dir(other)
    assert head_dir is not None and (head_dir / "HEAD").read_text().strip().endswith("side/work")


def test_rebase_in_progress_keeps_the_branch(repo: Path, git: Git) -> None:
    git("checkout", "-q", "-b", "topic")
    (repo / "README").write_text("topic\n")
    git("commit", "-q", "-am", "topic change")
    git("checkout", "-q", "main")
    (repo / "README").write_text("main\n")
    git("commit", "-q", "-am", "main change")
    git("checkout", "-q", "topic")
    with pytest.raises(Exception, match="git"):  # the conflict stops the rebase half-way
        git("rebase", "main")
    assert (repo / ".git" / "rebase-merge").is_dir() or (repo / ".git" / "rebase-apply").is_dir()
    assert git("status").find("rebase") >= 0
    assert detect_timeline(repo, {}).name == "git-branch/topic"


def test_outside_a_repository_is_local(tmp_path: Path) -> None:
    assert detect_timeline(tmp_path, {}) == Timeline("local", "local")


def test_override(repo: Path) -> None:
    assert detect_timeline(repo, {"KVSHIM_TIMELINE": "git-branch/demo"}).name == "git-branch/demo"
    assert detect_timeline(repo, {"KVSHIM_TIMELINE": "production"}).kind == "production"


def test_bad_override(tmp_path: Path) -> None:
    with pytest.raises(TimelineError, match="Invalid timeline 'staging'"):
        detect_timeline(tmp_path, {"KVSHIM_TIMELINE": "staging"})


def test_local_run_on_main_is_never_production(repo: Path) -> None:
    assert detect_timeline(repo, {"KVSHIM_PRODUCTION_BRANCH": "main"}).name == "git-branch/main"


def test_deployed_on_the_production_branch(repo: Path, git: Git) -> None:
    assert detect_timeline(repo, {"KVSHIM_DEPLOYED": "1"}).name == "production"
    git("checkout", "-q", "-b", "release")
    assert detect_timeline(repo, {"KVSHIM_DEPLOYED": "1"}).name == "git-branch/release"
    deployed_release = {"KVSHIM_DEPLOYED": "true", "KVSHIM_PRODUCTION_BRANCH": "release"}
    assert detect_timeline(repo, deployed_release).name == "production"


def test_deployed_without_git_metadata_is_production(tmp_path: Path) -> None:
    assert detect_timeline(tmp_path, {"KVSHIM_DEPLOYED": "1"}).name == "production"


def test_local_databases(tmp_path: Path) -> None:
    branch = Timeline("git-branch/feat/x", "branch")
    assert database_url_for(branch, DatabaseSettings(tmp_path)) == "memory:git-branch/feat/x"
    persisted = database_url_for(branch, DatabaseSettings(tmp_path, persist=True))
    assert persisted == str(tmp_path / ".kvshim" / f"{timeline_slug(branch.name)}.sqlite3")


def test_deployed_needs_a_database(tmp_path: Path) -> None:
    production = Timeline("production", "production")
    with pytest.raises(TimelineError, match="--database URL"):
        database_url_for(production, DatabaseSettings(tmp_path, deployed=True))
    attached = DatabaseSettings(tmp_path, deployed=True, database="/data/kv.sqlite3")
    assert database_url_for(production, attached) == "/data/kv.sqlite3"


@pytest.mark.parametrize(
    ("name", "start"),
    [
        ("local", "local"),
        ("production", "production"),
        ("git-branch/feat/x", "git-branch--feat--x-"),
        ("git-branch/Fix/Foo", "git-branch--fix--foo-"),
        ("git-branch/a b:c*?", "git-branch--a_b_c__-"),
        ("git-branch/" + "x" * 300, "git-branch--xxx"),
    ],
)
def test_slugs_are_safe_file_names(name: str, start: str) -> None:
    slug = timeline_slug(name)
    assert slug.startswith(start)
    assert len(slug.encode()) <= 120
    assert all(c.isalnum() and c.isascii() or c in "._-" for c in slug)
    if slug != name:
        assert slug[-9] == "-"  # a hash of the raw name follows


def test_slugs_never_collide() -> None:
    names = [
        "git-branch/fix/foo",
        "git-branch/fix--foo",
        "git-branch/Fix/Foo",
        "git-branch/fix-foo",
    ]
    assert len({timeline_slug(n) for n in names}) == len(names)


def test_data_dir_is_created_and_ignored(tmp_path: Path) -> None:
    prepare_data_dir(DatabaseSettings(tmp_path, persist=True))
    assert (tmp_path / ".kvshim" / ".gitignore").read_text().splitlines()[-1] == "*"
    prepare_data_dir(DatabaseSettings(tmp_path / "not-persisted"))
    assert not (tmp_path / "not-persisted").exists()
