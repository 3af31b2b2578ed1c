// Writes a named set of values into a Deno KV SQLite file, so the tests can read the exact V8
// bytes Deno stores (the `v` column of the `kv` table) and compare them with kvshim's codec.
// Usage: deno run -A --unstable-kv v8_golden.ts <path.sqlite>
// Each key is [name]; tests/test_values.py holds the Python value expected for each name.

const buffer = new ArrayBuffer(8);
new Uint8Array(buffer).set([1, 2, 3, 4, 5, 6, 7, 8]);
const cyclic: Record<string, unknown> = { a: 1 };
cyclic.self = cyclic;
const shared = { s: 1 };
const sparseTail: unknown[] = [];
sparseTail[5] = "x";
const holeyFilled = new Array(3);
holeyFilled[0] = 1;
holeyFilled[1] = 2;
holeyFilled[2] = 3;
let deep: unknown = "bottom";
for (let i = 0; i < 50; i++) deep = [deep];

const values: [string, unknown][] = [
  ["int_small", 7],
  ["int_negative", -123456],
  ["smi_min", -(2 ** 31)],
  ["smi_max", 2 ** 31 - 1],
  ["int_2_31", 2 ** 31],
  ["max_safe", Number.MAX_SAFE_INTEGER],
  ["min_safe", Number.MIN_SAFE_INTEGER],
  ["int_2_53", 2 ** 53],
  ["float", 3.14159],
  ["float_tiny", 5e-324],
  ["float_huge", 1e300],
  ["negative_zero", -0],
  ["nan", NaN],
  ["infinity", Infinity],
  ["negative_infinity", -Infinity],
  ["string_long", "x".repeat(200)],
  ["string_latin1", "café ÿ"],
  ["string_two_byte_long", "α".repeat(100)],
  ["string_emoji", "😀 hi"],
  ["object_two_byte_padded", { ab: "α" }],
  ["object_two_byte_key", { "ключ": 1, é: 2 }],
  ["array_two_byte", ["a", "β", "γγ", "δ", { k: "ε" }]],
  ["nested", { a: { b: { c: [1, "x", null, true, false] } } }],
  ["index_keys", { b: 1, 2: 2, 1: 3, a: 4, 10: 5, "01": 6, 4294967294: 7, 4294967295: 8 }],
  ["index_key_2_31", { 2147483648: 1, 2147483647: 2 }],
  ["bigint_small", 123n],
  ["bigint_huge", 2n ** 100n],
  ["bigint_negative_huge", -(2n ** 64n) - 1n],
  ["bigint_in_object", { n: 9007199254740993n }],
  ["date", new Date(1700000000123)],
  ["date_before_epoch", new Date(-86400001)],
  ["date_invalid", new Date(NaN)],
  ["date_far", new Date(8.64e15)],
  ["map_mixed_keys", new Map<unknown, unknown>([[1, "a"], ["1", "b"], [2.5, "c"], [null, "d"]])],
  ["map_object_key", new Map([[{ a: 1 }, "x"]])],
  ["set_single", new Set(["only"])],
  ["set_mixed", new Set([1, "a", 2.5])],
  ["set_unhashable", new Set([[1], { a: 1 }])],
  ["uint8_nested", { data: new Uint8Array([1, 2, 3]) }],
  ["uint8_offset", { v: new Uint8Array(buffer, 2, 3) }],
  ["uint8_two_views", [new Uint8Array(buffer, 0, 2), new Uint8Array(buffer, 4, 2)]],
  ["array_buffer", buffer],
  ["int32_array", new Int32Array([1, -1])],
  ["float64_array", new Float64Array([1.5])],
  ["bigint64_array", new BigInt64Array([-1n])],
  ["data_view", new DataView(buffer, 2, 3)],
  ["resizable_view", { r: new Uint8Array(new ArrayBuffer(4, { maxByteLength: 8 })) }],
  ["cyclic", cyclic],
  ["shared", [shared, shared]],
  ["sparse", [1, , 3]],
  ["sparse_tail", sparseTail],
  ["holey_filled", holeyFilled],
  ["array_named_property", Object.assign([1, 2], { foo: "x" })],
  ["undefined_in_object", { u: undefined }],
  ["regexp", /ab+c/gi],
  ["regexp_all_flags", /x/dgimsuy],
  ["regexp_unicode_sets", /[\p{L}]/v],
  ["error", new Error("boom")],
  ["error_no_message", new Error()],
  ["type_error_with_cause", new TypeError("bad", { cause: { code: 1 } })],
  ["range_error", new RangeError("r")],
  ["boxed", [new Number(1.5), new String("s"), new Boolean(false), Object(7n)]],
  ["kv_u64_nested", { u: new Deno.KvU64(5n) }],
  ["double_array", [1.5, 2, 3]],
  ["double_array_large_int", [1, 2 ** 40]],
  ["mixed_array", [1.5, 2, "a"]],
  ["empty_containers", { a: [], b: {}, d: new Set(), e: "" }],
  ["long_array", Array.from({ length: 300 }, (_, i) => i)],
  ["deep", deep],
  ["dom_exception", new DOMException("m", "AbortError")],
];

const kv = await Deno.openKv(Deno.args[0]);
for (const [name, value] of values) {
  await kv.set([name], value);
}
kv.close();
