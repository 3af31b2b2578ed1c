// The request counter from Deno's KV examples: every request reads ["requests"], adds one
// and writes it back (a plain read-modify-write, as in the original, so concurrent requests
// can lose updates). The only change is the port, taken from $PORT.
//
// Under kvshim:   kvshim run examples/counter.ts
// Directly:       DENO_KV_DEFAULT_PATH=http://127.0.0.1:4512/counter DENO_KV_ACCESS_TOKEN=... \
//                   deno run --unstable-kv -A examples/counter.ts

const kv = await Deno.openKv();

Deno.serve({ port: Number(Deno.env.get("PORT") ?? "8000") }, async () => {
  const res = await kv.get<number>(["requests"]);
  const requests = (res.value ?? 0) + 1;
  await kv.set(["requests"], requests);
  return Response.json({ requests });
});
