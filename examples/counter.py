"""The Deno Deploy request counter, counting every request exactly.

    kvshim run examples/counter.py

Deno's example reads the count, adds one and writes it back; two requests that read the same
count both write count+1, so one increment is lost. Here the increment is a ``KvU64`` sum, which
the database applies inside a single atomic write, so concurrent requests cannot overwrite each
other.
"""

from aiohttp import web

import kvshim

ONE = kvshim.KvU64(1)


async def handler(request: web.Request) -> web.Response:
    kv = await kvshim.open_kv()  # the timeline's database; cheap, shared by every request
    await kv.atomic().sum(["requests"], ONE).commit()
    res = await kv.get(["requests"])
    return web.json_response(int(res.value))
