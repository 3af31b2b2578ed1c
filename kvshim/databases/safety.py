"""The refusals that stand between a command and lost data, with what to do instead."""

from __future__ import annotations

from collections.abc import Sequence

from kvshim.databases.registry import DatabaseRecord, Instance
from kvshim.errors import RefusedError


def refuse_delete(instance: Instance, records: Sequence[DatabaseRecord]) -> None:
    """Refuse to delete an instance without confirmation, saying how to back up first."""
    lines = [
        f"Refusing to delete {instance.name!r} without --yes: this deletes the instance and "
        f"all {len(records)} of its timeline databases with their data."
    ]
    if records:
        lines.append("Back up first, for example:")
        lines += [
            f"  kvshim db backup {instance.name} --app {r.app} --timeline "
            f"{_timeline_arg(r.timeline)} -o {r.name}.ndjson"
            for r in records
        ]
    lines.append(f"Then run: kvshim db delete {instance.name} --yes")
    raise RefusedError("\n".join(lines))


def refuse_non_empty(database: str, action: str) -> None:
    """Refuse to write into a database that already holds entries."""
    raise RefusedError(
        f"Refusing to {action} into {database!r}: it is not empty. Use --replace to delete its "
        "entries first (back it up with `kvshim db backup` if you may need them)"
    )


def _timeline_arg(timeline: str) -> str:
    return f"'{timeline}'" if " " in timeline else timeline
