"""The tables of a KV database in PostgreSQL, and the migrations that create them.

Everything lives in one schema (``?schema=`` in the URL), so several KV databases share one
PostgreSQL database. ``kv_migrations`` records which entries of ``MIGRATIONS`` have run; a
backend applies the missing ones when it opens, under an advisory lock so that several clients
opening at once do not race. A role that may not create schemas can still use a schema that
someone else created and migrated: an up-to-date schema needs no DDL at all.
"""

from __future__ import annotations

import asyncpg

from kvshim.errors import BackendError

_WRITE_FUNCTION = r"""
    CREATE FUNCTION {s}.kv_write(
        p_now bigint, p_channel text,
        c_keys bytea[], c_versions bigint[],
        m_kinds smallint[], m_keys bytea[], m_values bytea[], m_encodings smallint[],
        m_expires bigint[],
        q_payloads bytea[], q_deadlines bigint[], q_keys bytea[], q_backoffs bytea[]
    ) RETURNS bigint LANGUAGE plpgsql AS $fn$
    DECLARE
        v bigint;
        found_version bigint;
        i integer;
        j integer;
        k bytea;
        val bytea;
        enc smallint;
        cur_value bytea;
        cur_encoding smallint;
        a numeric;
        b numeric;
        kind text;
        changed bytea[] := '{{}}';
        has_expiry boolean := false;
        keys_text text;
    BEGIN
        -- The write lock: every data-changing transaction takes it first (see writes.py).
        PERFORM pg_advisory_xact_lock(hashtext('kvshim.write.{s}'));
        FOR i IN 1 .. coalesce(array_length(c_keys, 1), 0) LOOP
            SELECT version INTO found_version FROM {s}.kv_data
             WHERE key = c_keys[i] AND (expire_at_ms IS NULL OR expire_at_ms > p_now);
            IF NOT FOUND THEN
                found_version := NULL;
            END IF;
            IF found_version IS DISTINCT FROM c_versions[i] THEN
                RETURN NULL;
            END IF;
        END LOOP;
        v := nextval('{s}.kv_version');
        FOR i IN 1 .. coalesce(array_length(m_kinds, 1), 0) LOOP
            k := m_keys[i];
            val := m_values[i];
            enc := m_encodings[i];
            IF m_kinds[i] = 2 THEN
                DELETE FROM {s}.kv_data WHERE key = k;
                changed := changed || k;
                CONTINUE;
            END IF;
            IF m_kinds[i] = 3 THEN
                k := k || '\x02'::bytea
                    || convert_to(lpad(to_hex(v), 16, '0') || '0000', 'UTF8') || '\x00'::bytea;
            ELSIF m_kinds[i] >= 4 THEN
                kind := (ARRAY['sum', 'min', 'max'])[m_kinds[i] - 3];
                SELECT value, encoding INTO cur_value, cur_encoding FROM {s}.kv_data
                 WHERE key = k AND (expire_at_ms IS NULL OR expire_at_ms > p_now);
                IF FOUND THEN
                    IF cur_encoding <> 2 THEN
                        RAISE EXCEPTION USING ERRCODE = 'KV00' || m_kinds[i], MESSAGE = format(
                            'Failed to perform %L mutation on a non-U64 value in the database',
                            kind);
                    END IF;
                    a := 0;
                    b := 0;
                    FOR j IN REVERSE 7 .. 0 LOOP
                        a := a * 256 + get_byte(cur_value, j);
                        b := b * 256 + get_byte(val, j);
                    END LOOP;
                    IF kind = 'sum' THEN
                        a := mod(a + b, 18446744073709551616);
                    ELSIF kind = 'min' THEN
                        a := least(a, b);
                    ELSE
                        a := greatest(a, b);
                    END IF;
                    val := '\x0000000000000000'::bytea;
                    FOR j IN 0 .. 7 LOOP
                        val := set_byte(val, j, mod(a, 256)::integer);
                        a := div(a, 256);
                    END LOOP;
                END IF;
            END IF;
            INSERT INTO {s}.kv_data (key, value, encoding, version, expire_at_ms)
            VALUES (k, val, enc, v, CASE WHEN m_kinds[i] >= 4 THEN NULL ELSE m_expires[i] END)
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value,
                encoding = EXCLUDED.encoding, version = EXCLUDED.version,
                expire_at_ms = EXCLUDED.expire_at_ms;
            changed := changed || k;
            has_expiry := has_expiry OR (m_kinds[i] < 4 AND m_expires[i] IS NOT NULL);
        END LOOP;
        IF coalesce(array_length(q_payloads, 1), 0) > 0 THEN
            INSERT INTO {s}.kv_queue (payload, deliver_at_ms, keys_if_undelivered,
                                      backoff_schedule)
            SELECT * FROM unnest(q_payloads, q_deadlines, q_keys, q_backoffs);
        END IF;
        IF array_length(changed, 1) > 0 OR array_length(q_payloads, 1) > 0 THEN
            SELECT string_agg(DISTINCT encode(x, 'hex'), ',') INTO keys_text
              FROM unnest(changed) AS x;
            IF length(keys_text) > 7000 THEN
                keys_text := '*';
            END IF;
            PERFORM pg_notify(p_channel,
                CASE WHEN array_length(q_payloads, 1) > 0 THEN 'q' ELSE '' END
                || CASE WHEN has_expiry THEN 't' ELSE '' END
                || '|' || coalesce(keys_text, ''));
        END IF;
        RETURN v;
    END
    $fn$;

    CREATE FUNCTION {s}.kv_write_batch(
        p_token bigint, p_now bigint, p_channel text,
        c_end integer[], m_end integer[], q_end integer[],
        c_keys bytea[], c_versions bigint[],
        m_kinds smallint[], m_keys bytea[], m_values bytea[], m_encodings smallint[],
        m_expires bigint[],
        q_payloads bytea[], q_deadlines bigint[], q_keys bytea[], q_backoffs bytea[]
    ) RETURNS bigint[] LANGUAGE plpgsql AS $fn$
    DECLARE
        results bigint[] := '{{}}';
        w integer;
        c0 integer := 1;
        m0 integer := 1;
        q0 integer := 1;
    BEGIN
        -- A retry of a batch that did commit (the connection broke before the client heard)
        -- gets the stored outcome instead of applying the writes twice. Looked up under the
        -- write lock, so a first attempt still running has finished by then.
        PERFORM pg_advisory_xact_lock(hashtext('kvshim.write.{s}'));
        SELECT b.results INTO results FROM {s}.kv_batches AS b WHERE b.token = p_token;
        IF FOUND THEN
            RETURN results;
        END IF;
        results := '{{}}';
        -- Several writes in one transaction: one COMMIT (one WAL flush) for all of them.
        -- Each write is its own subtransaction, so a failing sum/min/max (SQLSTATE KV004,
        -- KV005, KV006) undoes that write only and is reported as minus its mutation kind.
        IF array_length(c_end, 1) = 1 THEN
            -- A lone write needs no subtransaction: its error aborts the whole statement.
            results := ARRAY[{s}.kv_write(p_now, p_channel, c_keys, c_versions, m_kinds,
                m_keys, m_values, m_encodings, m_expires, q_payloads, q_deadlines, q_keys,
                q_backoffs)];
            INSERT INTO {s}.kv_batches (token, results, created_at_ms)
            VALUES (p_token, results, p_now);
            RETURN results;
        END IF;
        FOR w IN 1 .. coalesce(array_length(c_end, 1), 0) LOOP
            BEGIN
                results := array_append(results, {s}.kv_write(p_now, p_channel,
                    c_keys[c0:c_end[w]], c_versions[c0:c_end[w]],
                    m_kinds[m0:m_end[w]], m_keys[m0:m_end[w]], m_values[m0:m_end[w]],
                    m_encodings[m0:m_end[w]], m_expires[m0:m_end[w]],
                    q_payloads[q0:q_end[w]], q_deadlines[q0:q_end[w]], q_keys[q0:q_end[w]],
                    q_backoffs[q0:q_end[w]]));
            EXCEPTION
                WHEN SQLSTATE 'KV004' THEN results := array_append(results, -4::bigint);
                WHEN SQLSTATE 'KV005' THEN results := array_append(results, -5::bigint);
                WHEN SQLSTATE 'KV006' THEN results := array_append(results, -6::bigint);
            END;
            c0 := c_end[w] + 1;
            m0 := m_end[w] + 1;
            q0 := q_end[w] + 1;
        END LOOP;
        INSERT INTO {s}.kv_batches (token, results, created_at_ms)
        VALUES (p_token, results, p_now);
        RETURN results;
    END
    $fn$;
"""

_DRAW_VERSION = "v := nextval('{s}.kv_version');"
# A random 1-9 nextval calls, not nextval + setval: setval needs UPDATE on the sequence, and
# USAGE is all a client has to be granted. Under the write lock no other writer interleaves.
_DRAW_VERSION_RANDOM_STEP = (
    "v := nextval('{s}.kv_version');\n"
    "        FOR step IN 2 .. 1 + floor(random() * 9)::integer LOOP\n"
    "            v := nextval('{s}.kv_version');\n"
    "        END LOOP;"
)
assert _DRAW_VERSION in _WRITE_FUNCTION

MIGRATIONS: tuple[str, ...] = (
    # 1: entries, the version sequence, the queue, and the write functions.
    """
    CREATE SEQUENCE {s}.kv_version AS bigint;
    CREATE TABLE {s}.kv_data (
        key bytea PRIMARY KEY,
        value bytea NOT NULL,
        encoding smallint NOT NULL,
        version bigint NOT NULL,
        expire_at_ms bigint
    );
    CREATE INDEX kv_data_expiry ON {s}.kv_data (expire_at_ms) WHERE expire_at_ms IS NOT NULL;
    CREATE TABLE {s}.kv_queue (
        id bigserial PRIMARY KEY,
        payload bytea NOT NULL,
        deliver_at_ms bigint NOT NULL,
        keys_if_undelivered bytea NOT NULL,
        backoff_schedule bytea NOT NULL,
        lease_token bigint
    );
    CREATE INDEX kv_queue_due ON {s}.kv_queue (deliver_at_ms, id);
    CREATE TABLE {s}.kv_batches (
        token bigint PRIMARY KEY,
        results bigint[] NOT NULL,
        created_at_ms bigint NOT NULL
    );
    """
    + _WRITE_FUNCTION,
    # 2: a commit moves the version by a random 1-9, as Deno's local backends do.
    _WRITE_FUNCTION.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION").replace(
        _DRAW_VERSION, _DRAW_VERSION_RANDOM_STEP
    ),
)
"""Each entry runs once per schema, in order; ``{s}`` is the quoted schema name. Append new
entries; never edit one that has shipped."""


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


async def migrate(con: asyncpg.Connection, schema: str) -> None:
    """Bring ``schema`` up to the latest migration, creating it if needed."""
    if await _applied(con, schema) == len(MIGRATIONS):
        return
    s = quote_ident(schema)
    async with con.transaction():
        await con.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"kvshim:{schema}")
        exists = await con.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema)
        if not exists:
            await con.execute(f"CREATE SCHEMA {s}")
        await con.execute(
            f"CREATE TABLE IF NOT EXISTS {s}.kv_migrations ("
            "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = await _applied(con, schema)
        for number in range(done + 1, len(MIGRATIONS) + 1):
            await con.execute(MIGRATIONS[number - 1].format(s=s))
            await con.execute(f"INSERT INTO {s}.kv_migrations (version) VALUES ($1)", number)


async def _applied(con: asyncpg.Connection, schema: str) -> int:
    """How many migrations ``schema`` has had (0 if it has no migrations table)."""
    table = f"{quote_ident(schema)}.kv_migrations"
    if await con.fetchval("SELECT to_regclass($1)", table) is None:
        return 0
    done = int(await con.fetchval(f"SELECT coalesce(max(version), 0) FROM {table}"))
    if done > len(MIGRATIONS):
        raise BackendError(
            f"PostgreSQL schema {schema!r} was migrated by a newer kvshim "
            f"(version {done}, this one knows {len(MIGRATIONS)})"
        )
    return done
