"""``kvshim serve``: a KV Connect server hosting many databases by name.

``DatabaseService`` runs one in-process (``await service.start()`` returns its URL; port 0
picks a free port); ``make_kv_connect_app`` is the bare ASGI app; ``TokenRegistry`` manages
per-database tokens. Protocol: kv-connect.md.
"""

from kvshim.server.app import KvConnectApp, ServerSettings
from kvshim.server.databases import Databases
from kvshim.server.names import DEFAULT_DATABASE, check_name
from kvshim.server.service import DatabaseService, make_kv_connect_app, serve
from kvshim.server.tokens import TokenInfo, TokenRegistry

__all__ = [
    "DEFAULT_DATABASE",
    "DatabaseService",
    "Databases",
    "KvConnectApp",
    "ServerSettings",
    "TokenInfo",
    "TokenRegistry",
    "check_name",
    "make_kv_connect_app",
    "serve",
]
