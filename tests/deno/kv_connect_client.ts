// Real Deno against `kvshim serve`: runs one scenario on Deno's own local database and on the
// remote one, and fails unless both give the same results (versionstamps compared by order).
// Then checks the values Python wrote under ["py", ...], writes values for Python to check
// under ["deno", ...], and checks expiry (kvshim hides expired keys on read; Deno's local
// database only drops them at its next sweep, up to 60 s later, so that part is remote-only).
//
// Usage: deno run --unstable-kv -A kv_connect_client.ts <remote database url>
// (DENO_KV_ACCESS_TOKEN set). Prints "OK" and exits 0, or prints the mismatch and exits 1.

const url = Deno.args[0];

type Log = unknown[];

function failure(message: string): never {
  console.error(message);
  Deno.exit(1);
}

async function scenario(kv: Deno.Kv): Promise<Log> {
  const log: Log = [];
  const note = (label: string, value: unknown) => log.push([label, value]);
  const entries = async (iter: Deno.KvListIterator<unknown>) => {
    const out = [];
    for await (const e of iter) out.push(e);
    return out;
  };

  note("get missing", await kv.get(["s", "a"]));
  note("set", await kv.set(["s", "a"], "hello"));
  note("get", await kv.get(["s", "a"]));
  await kv.set(["s", "bytes"], new Uint8Array([1, 0, 255]));
  await kv.set(["s", "u64"], new Deno.KvU64(5n));
  await kv.set(["s", "obj"], { a: [1, "x", null, true], b: { c: 2.5 } });
  await kv.set(["s", "big"], 2n ** 70n);
  await kv.set(["s", "map"], new Map([["k", 1]]));
  await kv.set(["s", 1], "number key");
  await kv.set(["s", 1n], "bigint key");
  note("getMany", await kv.getMany([["s", "bytes"], ["s", "u64"], ["nope"], ["s", "obj"]]));

  note("list prefix", await entries(kv.list({ prefix: ["s"] })));
  note("list reverse", await entries(kv.list({ prefix: ["s"] }, { reverse: true })));
  note("list limit", await entries(kv.list({ prefix: ["s"] }, { limit: 3 })));
  note("list range", await entries(kv.list({ start: ["s", "b"], end: ["s", "obj"] })));
  const page = kv.list({ prefix: ["s"] }, { limit: 2 });
  note("page 1", await entries(page));
  note("page 2", await entries(kv.list({ prefix: ["s"] }, { limit: 2, cursor: page.cursor })));
  note("page 2 reverse", await entries(kv.list({ prefix: ["s"] }, { reverse: true, limit: 2, batchSize: 1 })));

  const current = await kv.get(["s", "a"]);
  note("check ok", await kv.atomic().check(current).set(["s", "a"], "v2").commit());
  note("check stale", await kv.atomic().check(current).set(["s", "a"], "v3").commit());
  note("check absent ok", await kv.atomic().check({ key: ["new"], versionstamp: null }).set(["new"], 1).commit());
  note("check absent stale", await kv.atomic().check({ key: ["new"], versionstamp: null }).set(["new"], 2).commit());
  note("after checks", await kv.getMany([["s", "a"], ["new"]]));

  await kv.atomic().sum(["n"], 10n).commit();
  await kv.atomic().sum(["n"], 0xffffffffffffffffn).commit();
  note("sum wraps", await kv.get(["n"]));
  await kv.atomic().min(["n"], 3n).commit();
  note("min", await kv.get(["n"]));
  await kv.atomic().max(["n"], 100n).commit();
  note("max", await kv.get(["n"]));
  await kv.atomic().max(["fresh"], 7n).commit();
  note("max on missing", await kv.get(["fresh"]));
  try {
    await kv.atomic().sum(["s", "a"], 1n).commit();
    note("sum on string", "no error");
  } catch (e) {
    note("sum on string", String(e).includes("Failed to perform 'sum' mutation on a non-U64 value"));
  }
  note("after failed sum", await kv.get(["s", "a"]));

  await kv.delete(["s", "a"]);
  note("deleted", await kv.get(["s", "a"]));

  const stream = kv.watch([["w1"], ["w2"]]);
  const reader = stream.getReader();
  const snapshot = async () => (await reader.read()).value;
  note("watch 0", await snapshot());
  await kv.set(["w1"], "one");
  note("watch 1", await snapshot());
  await kv.set(["w2"], "two");
  note("watch 2", await snapshot());
  await kv.delete(["w1"]);
  note("watch 3", await snapshot());
  await kv.atomic().set(["w1"], 1).set(["w2"], 2).commit();
  note("watch 4", await snapshot());
  await reader.cancel();
  return log;
}

// Versionstamps differ between databases; replace each by its rank among all the run's
// versionstamps, so the order of commits is compared too.
function normalise(log: Log): string {
  const stamps = new Set<string>();
  const collect = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(collect);
    else if (v && typeof v === "object" && !(v instanceof Uint8Array)) {
      for (const [k, x] of Object.entries(v)) {
        if (k === "versionstamp" && typeof x === "string") stamps.add(x);
        else collect(x);
      }
    }
  };
  collect(log);
  const rank = new Map([...stamps].sort().map((s, i) => [s, i]));
  const walk = (v: unknown): unknown => {
    if (typeof v === "bigint") return `${v}n`;
    if (v instanceof Deno.KvU64) return `u64:${v.value}`;
    if (v instanceof Uint8Array) return `bytes:${Array.from(v)}`;
    if (v instanceof Map) return { map: Array.from(v.entries()).map(walk) };
    if (v instanceof Set) return { set: Array.from(v).map((x) => JSON.stringify(walk(x))).sort() };
    if (v instanceof Date) return { date: v.toISOString() };
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        out[k] = k === "versionstamp" && typeof x === "string" ? `vs#${rank.get(x)}` : walk(x);
      }
      return out;
    }
    return v;
  };
  return JSON.stringify(walk(log), null, 1);
}

const local = await Deno.openKv(":memory:");
const expected = normalise(await scenario(local));
local.close();

const kv = await Deno.openKv(url);
const actual = normalise(await scenario(kv));
if (actual !== expected) {
  const a = actual.split("\n"), e = expected.split("\n");
  const i = a.findIndex((line, n) => line !== e[n]);
  failure(`remote differs from local at line ${i}:\n  local:  ${e.slice(i - 3, i + 3).join("\n          ")}\n  remote: ${a.slice(i - 3, i + 3).join("\n          ")}`);
}

// Values written by Python (tests/server/test_deno_client.py) read back equal in Deno.
const fromPython: Record<string, unknown> = {
  str: "héllo 😀",
  int: 42,
  float: 2.5,
  bigint: 2n ** 70n,
  object: { a: [1, "x", null, true], b: { c: -1.5 } },
  bytes: new Uint8Array([0, 1, 255]),
  u64: new Deno.KvU64(7n),
  date: new Date(Date.UTC(2024, 4, 6, 7, 8, 9, 123)),
  set: new Set(["a", "b"]),
  null: null,
  bool: false,
};
for (const [name, want] of Object.entries(fromPython)) {
  const got = (await kv.get(["py", name])).value;
  const same = normalise([got]) === normalise([want]) &&
    Object.prototype.toString.call(got) === Object.prototype.toString.call(want);
  if (!same) failure(`["py", "${name}"]: Python wrote ${Deno.inspect(want)}, Deno read ${Deno.inspect(got)}`);
}
// Values for Python to read back (same names, same values).
for (const [name, value] of Object.entries(fromPython)) await kv.set(["deno", name], value);

// Expiry: present at once, gone (and the watcher told) once expired.
await kv.set(["ttl"], "short", { expireIn: 300 });
const ttlReader = kv.watch([["ttl"]]).getReader();
if ((await kv.get(["ttl"])).value !== "short") failure("expiring key missing at once");
if ((await ttlReader.read()).value?.[0].value !== "short") failure("watch did not see the key");
if ((await ttlReader.read()).value?.[0].value !== null) failure("watch did not see the expiry");
if ((await kv.get(["ttl"])).value !== null) failure("expired key still readable");
await ttlReader.cancel();

kv.close();
console.log("OK");
