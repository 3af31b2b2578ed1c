"""The ``kvshim`` command line: a thin skin over the Python API.

Each command group lives in its own module and is registered here; library errors
(``KvError``) become ``click.ClickException`` at this layer only.
"""

from __future__ import annotations

import click

from kvshim import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kvshim")
def main() -> None:
    """kvshim: Deno KV for Python, with one database per timeline."""


def _register() -> None:
    # Each command module adds itself to ``main``; imported here so that ``kvshim.cli.main``
    # always has every command.
    from kvshim.cli import dashboard, db, run, serve

    main.add_command(db.db)
    main.add_command(dashboard.dashboard)
    run.register(main)
    serve.register(main)


_register()
