"""Schema names and URLs of KV databases kept together in one PostgreSQL database."""

from __future__ import annotations

import re

import pytest

from kvshim.backends.pg_location import check_location, database_url, schema_for
from kvshim.backends.postgres.config import parse_url
from kvshim.databases.naming import database_name
from kvshim.errors import KvValueError

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def test_plain_names_map_readably_and_the_rest_carry_a_hash() -> None:
    assert schema_for("shop-production") == "kv_shop_production"
    assert schema_for("shop--fix-x") == "kv_shop__fix_x"
    hashed = schema_for("my_app-production")
    assert re.fullmatch(r"kv_my_app_production_[0-9a-f]{8}", hashed)
    assert schema_for("Shop.v2").startswith("kv_shop_v2_")


def test_schemas_are_identifiers_and_never_collide() -> None:
    names = [
        "a-b", "a_b", "a--b", "a__b", "a-_b", "A-b", "a.b", "pg_x", "public", "kvshim", "1a",
        "x" * 60, "x" * 61, "x" * 64, "y" * 63 + "a", "y" * 63 + "b",
        database_name("myapp", "git-branch/feature/x"),
        database_name("myapp", "git-branch/feature-x"),
    ]  # fmt: skip
    schemas = [schema_for(n) for n in names]
    assert len(set(schemas)) == len(names)
    for schema in schemas:
        assert IDENTIFIER.match(schema) and len(schema.encode()) <= 63, schema
        assert schema.startswith("kv_")
        assert parse_url(f"postgresql://h/d?schema={schema}").schema == schema


def test_database_url_keeps_the_location_parameters() -> None:
    location = "postgresql://u:p@/db?host=/run/pg&pool_size=3"
    config = parse_url(database_url(location, "shop-production"))
    assert config.schema == "kv_shop_production" and config.pool_size == 3
    assert "host=%2Frun%2Fpg" in config.dsn and config.dsn.startswith("postgresql://u:p@/db?")
    with pytest.raises(KvValueError, match="Remove '\\?schema='") as info:
        check_location("postgresql://u:secret@h/db?schema=x")
    assert "secret" not in str(info.value)


def test_long_schemas_get_a_short_enough_notify_channel() -> None:
    long, other = schema_for("z" * 64), schema_for("z" * 65)
    channels = {parse_url(f"postgresql://h/d?schema={s}").channel for s in (long, other)}
    assert len(channels) == 2 and all(len(c) <= 63 for c in channels)
    assert parse_url("postgresql://h/d?schema=kv_a").channel == "kvshim.kv_a"
