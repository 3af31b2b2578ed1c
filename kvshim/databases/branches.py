"""Which branches a Git repository has, for pruning the databases of deleted ones."""

from __future__ import annotations

import os

import git

from kvshim.errors import KvValueError


def existing_branches(repository: str | os.PathLike[str]) -> set[str]:
    """The local branches of ``repository`` and the branches of its remotes (``origin/x`` counts
    as ``x``)."""
    try:
        repo = git.Repo(repository, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise KvValueError(f"{os.fspath(repository)} is not inside a Git repository") from exc
    with repo:
        names = {head.name for head in repo.heads}
        for remote in repo.remotes:
            names |= {ref.remote_head for ref in remote.refs if ref.remote_head != "HEAD"}
    return names
