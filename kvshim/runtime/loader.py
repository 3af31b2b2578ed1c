"""Load the user's application fresh, as an aiohttp ``web.Application``.

Accepted targets: ``path/to/app.py`` or ``module.name``, optionally followed by ``:attr``.
Without ``:attr`` the module must define one of ``app`` (a ``web.Application``),
``create_app()`` (a factory, sync or async, returning one) or ``handler(request)`` (a coroutine
served for every method and path). With ``:attr`` the attribute may be any of those shapes.

Every load re-imports the app: the project's own modules are removed from ``sys.modules`` first,
so an edit to any module of the project is picked up.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from aiohttp import web

from kvshim.errors import AppLoadError

_SHAPES = ("app", "create_app", "handler")
_KVSHIM_DIR = Path(__file__).resolve().parent.parent


@dataclass(slots=True)
class AppLoader:
    """Loads ``target`` from ``project_dir``, purging the project's modules between loads."""

    target: str
    project_dir: Path
    _baseline: frozenset[str] = field(default_factory=lambda: frozenset(sys.modules))

    async def load(self) -> web.Application:
        """Import the target afresh and return its application; raises ``AppLoadError`` with the
        traceback of whatever went wrong."""
        self.purge()
        importlib.invalidate_caches()
        module_ref, _, attr = self.target.partition(":")
        # Bytecode caches compare mtimes in whole seconds: a quick second edit of the same size
        # would load the old code, so project modules are always compiled from source.
        writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
        try:
            module = self._import(module_ref)
            return await _application(module, attr or None, self.target)
        except AppLoadError:
            raise
        except (Exception, SystemExit) as error:
            raise AppLoadError(_describe(error, self.target)) from error
        finally:
            sys.dont_write_bytecode = writes_bytecode

    def purge(self) -> None:
        """Forget every module imported since the loader was made that lives in the project."""
        for name, module in list(sys.modules.items()):
            if name not in self._baseline and self._is_project_module(module):
                del sys.modules[name]

    def _is_project_module(self, module: ModuleType | None) -> bool:
        file = getattr(module, "__file__", None)
        if not file:
            return False
        path = Path(file).resolve()
        return path.is_relative_to(self.project_dir) and not path.is_relative_to(_KVSHIM_DIR)

    def _import(self, module_ref: str) -> ModuleType:
        if module_ref.endswith(".py") or "/" in module_ref or "\\" in module_ref:
            return _import_file((self.project_dir / module_ref).resolve())
        if str(self.project_dir) not in sys.path:
            sys.path.insert(0, str(self.project_dir))
        sys.modules.pop(module_ref, None)
        return importlib.import_module(module_ref)


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise AppLoadError(f"App file not found: {path}")
    # The app's folder goes first on sys.path so that it can import its sibling modules.
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise AppLoadError(f"Cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        source = path.read_bytes()
        exec(compile(source, str(path), "exec"), module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


async def _application(module: ModuleType, attr: str | None, target: str) -> web.Application:
    if attr is not None:
        if not hasattr(module, attr):
            raise AppLoadError(f"{target}: module {module.__name__!r} has no attribute {attr!r}")
        return await _as_application(getattr(module, attr), attr, target)
    for name in _SHAPES:
        if hasattr(module, name):
            return await _as_application(getattr(module, name), name, target)
    raise AppLoadError(
        f"{target} defines none of: app (a web.Application), create_app() (a factory) or "
        "handler(request) (a coroutine function)"
    )


async def _as_application(obj: Any, name: str, target: str) -> web.Application:
    if isinstance(obj, web.Application):
        return obj
    if not callable(obj):
        raise AppLoadError(f"{target}: {name} is neither a web.Application nor callable")
    if inspect.iscoroutinefunction(obj) and _takes_one_argument(obj):
        return _serve_everywhere(obj)
    made = obj()
    if inspect.isawaitable(made):
        made = await made
    if not isinstance(made, web.Application):
        raise AppLoadError(
            f"{target}: {name}() returned {type(made).__name__}, not a web.Application"
        )
    return made


def _takes_one_argument(function: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    required = [
        p
        for p in parameters
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return len(required) == 1


def _serve_everywhere(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{path:.*}", handler)
    return app


def _describe(error: BaseException, target: str) -> str:
    # Only the user's frames: kvshim's own import machinery is noise in this traceback.
    tb = error.__traceback__
    while tb is not None and Path(tb.tb_frame.f_code.co_filename).is_relative_to(_KVSHIM_DIR):
        tb = tb.tb_next
    details = "".join(traceback.format_exception(type(error), error, tb)).rstrip()
    return f"Cannot load {target}:\n{details}"
