"""The KV Connect metadata exchange: the JSON request, version negotiation and the reply.

A client POSTs ``{"supportedVersions": [...]}`` to the database URL and gets back the protocol
version, the database id, the data-path endpoints and a token with its expiry
(kv-connect.md §2).
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from kvshim.errors import ProtocolError

SERVER_VERSIONS = (2, 3)
"""Protocol versions the server speaks (v1 needs absolute endpoints and has no watch)."""
CLIENT_VERSIONS = (2, 3)
"""Protocol versions the remote backend offers."""


def client_versions(body: bytes) -> list[int]:
    """The versions a metadata request offers, parsed leniently (unknown fields ignored).

    An empty body means version 1 only (the protocol spec); a body that is not JSON gets a 400.
    """
    if not body.strip():
        return [1]
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError(
            "The server requires at least protocol version 2. Use Deno 1.38.0 or newer."
        ) from None
    versions = parsed.get("supportedVersions") if isinstance(parsed, dict) else None
    if not isinstance(versions, list):
        return [1]
    return [v for v in versions if isinstance(v, int) and not isinstance(v, bool)]


def negotiate(offered: Sequence[int], supported: Sequence[int] = SERVER_VERSIONS) -> int:
    """The highest version both sides speak; ``ProtocolError`` if there is none."""
    common = set(offered) & set(supported)
    if not common:
        wanted = " or ".join(str(v) for v in supported)
        raise ProtocolError(
            f"The server could not negotiate a protocol version. "
            f"The server requires protocol version {wanted}."
        )
    return max(common)


def rfc3339(at: datetime.datetime) -> str:
    """``at`` (UTC) as RFC 3339 with microseconds and a ``Z``."""
    return at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Metadata:
    """A metadata reply: where and how to send data-path calls, and until when."""

    version: int
    database_id: uuid.UUID
    endpoint: str
    token: str
    expires_at: datetime.datetime

    def to_json(self) -> bytes:
        """The reply body, with one strong endpoint."""
        return json.dumps(
            {
                "version": self.version,
                "databaseId": str(self.database_id),
                "endpoints": [{"url": self.endpoint, "consistency": "strong"}],
                "token": self.token,
                "expiresAt": rfc3339(self.expires_at),
            }
        ).encode()

    @classmethod
    def from_json(cls, body: bytes) -> Metadata:
        """Parse a reply; ``ProtocolError`` if it misses a field or has no strong endpoint."""
        try:
            data = json.loads(body)
            version = data["version"]
            database_id = uuid.UUID(data["databaseId"])
            strong = [e["url"] for e in data["endpoints"] if e["consistency"] == "strong"]
            token = data["token"]
            expires = datetime.datetime.fromisoformat(data["expiresAt"].replace("Z", "+00:00"))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ProtocolError(f"Failed to parse metadata: {error!r}") from None
        if version not in CLIENT_VERSIONS:
            raise ProtocolError(f"Failed to parse metadata: unsupported metadata version {version}")
        if not strong or not isinstance(strong[0], str) or strong[0].endswith("/"):
            raise ProtocolError("Failed to parse metadata: no usable strong endpoint")
        if not isinstance(token, str):
            raise ProtocolError("Failed to parse metadata: token is not a string")
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=datetime.UTC)
        return cls(version, database_id, strong[0], token, expires)
