// Reads or writes a Deno KV file for tests/backends/test_sqlite.py.
//   deno run -A --unstable-kv kv_file.ts write PATH   -> writes the sample entries, prints the
//                                                        last versionstamp
//   deno run -A --unstable-kv kv_file.ts read PATH    -> prints every entry as tagged JSON
const [mode, path] = Deno.args;
const kv = await Deno.openKv(path);

function tag(v: unknown): unknown {
  if (v instanceof Deno.KvU64) return { u64: v.value.toString() };
  if (v instanceof Uint8Array) return { bytes: Array.from(v) };
  if (typeof v === "bigint") return { bigint: v.toString() };
  if (v instanceof Date) return { date: v.getTime() };
  if (v instanceof Map) return { map: Array.from(v.entries()).map(([k, x]) => [tag(k), tag(x)]) };
  if (Array.isArray(v)) return v.map(tag);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, tag(x)]));
  }
  return v;
}

if (mode === "write") {
  const r = await kv.atomic()
    .set(["deno", "str"], "héllo ✓")
    .set(["deno", "num"], 1.5)
    .set(["deno", "int"], -42)
    .set(["deno", "obj"], { a: [1, "two", null, true], b: { c: 3 } })
    .set(["deno", "u64"], new Deno.KvU64(18446744073709551615n))
    .set(["deno", "bytes"], new Uint8Array([0, 1, 255]))
    .set(["deno", "big"], 12345678901234567890n)
    .set(["deno", "date"], new Date(1700000000000))
    .set(["deno", 7, true], null)
    .commit();
  console.log(JSON.stringify({ versionstamp: r.versionstamp }));
} else {
  const out = [];
  for await (const e of kv.list({ prefix: [] })) {
    out.push({ key: e.key.map(tag), value: tag(e.value), versionstamp: e.versionstamp });
  }
  console.log(JSON.stringify(out));
}
kv.close();
