"""Bounded load test of ``mfmrec serve``: micro-batching on vs off, side by side.

For each run given (e.g. a VIP5 and a SASRec run) and each mode (batching on, off), the
script starts ``mfmrec serve RUN`` on a free 127.0.0.1 port in a subprocess, waits for
``/healthz``, warms up, then sends a fixed number of
``GET /api/users/{id}/recommendations?k=K&model=KEY`` requests (users round-robin) at
each concurrency, and stops the server. It prints requests/s, p50/p95/p99 latency and
errors per row, then the ratio batching-on / batching-off per concurrency::

  python benchmarks/serve_load.py --run runs/vip5-demo --run runs/sasrec-demo \\
      --requests 192 --concurrency 1,8,32

Client and server share the machine: on a small CPU the client's own work is part of
every number.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

SRC = Path(__file__).resolve().parents[1] / "src"


@dataclass
class Row:
    run: str
    batching: bool
    concurrency: int
    requests: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run: Path, batching: bool, max_batch: int, max_wait_ms: float
                 ) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "mfmrec.cli.main", "serve", str(run), "--port", str(port),
           "--log-level", "warning", "--max-batch", str(max_batch),
           "--max-wait-ms", str(max_wait_ms)] + ([] if batching else ["--no-batching"])
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server for {run} exited with code {proc.returncode}")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"server for {run} did not answer /healthz within 120 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def load(base: str, urls: list[str], concurrency: int) -> tuple[float, list[float], int]:
    """Send every url once with ``concurrency`` workers; (seconds, latencies, errors)."""
    latencies: list[float] = []
    errors = 0
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:

        async def worker() -> None:
            nonlocal next_index, errors
            while next_index < len(urls):
                url = urls[next_index]
                next_index += 1
                t0 = time.perf_counter()
                try:
                    ok = (await client.get(url)).status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                errors += not ok

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start, latencies, errors


def measure(run: Path, batching: bool, args: argparse.Namespace) -> list[Row]:
    proc, base = start_server(run, batching, args.max_batch, args.max_wait_ms)
    try:
        users = [u["id"] for u in httpx.get(base + "/api/users", params={"limit": 500}).json()
                 ["users"]]
        key = httpx.get(base + "/api/info").json()["models"][0]["key"]
        urls = [f"/api/users/{users[n % len(users)]}/recommendations?k={args.k}&model={key}"
                for n in range(args.requests)]
        asyncio.run(load(base, urls[:args.warmup], 4))
        rows = []
        for c in args.concurrency:
            seconds, lat, errors = asyncio.run(load(base, urls, c))
            rows.append(Row(run.name, batching, c, len(urls), seconds, lat, errors))
            print(_fmt(rows[-1]), flush=True)
        return rows
    finally:
        stop_server(proc)


def _fmt(r: Row) -> str:
    return (f"| {r.run} | {'on' if r.batching else 'off'} | {r.concurrency} | {r.requests} | "
            f"{r.rps:.1f} | {r.pct(50):.1f} | {r.pct(95):.1f} | {r.pct(99):.1f} | {r.errors} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, action="append", required=True,
                   help="A run directory (repeat for several)")
    p.add_argument("--requests", type=int, default=192, help="Requests per concurrency")
    p.add_argument("--concurrency", default="1,8,32", help="Comma-separated levels")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--warmup", type=int, default=16)
    args = p.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    print(f"{args.requests} requests per row, k={args.k}, max batch {args.max_batch}, "
          f"max wait {args.max_wait_ms:g} ms")
    print("| run | batching | concurrency | requests | req/s | p50 ms | p95 ms | p99 ms | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = [r for run in args.run for on in (True, False) for r in measure(run, on, args)]
    print("\n| run | concurrency | req/s on / off |\n|---|---:|---:|")
    for run in args.run:
        for c in args.concurrency:
            on, off = (next(r for r in rows if r.run == run.name and r.concurrency == c
                            and r.batching is b) for b in (True, False))
            print(f"| {run.name} | {c} | {on.rps / off.rps:.2f}x |")
    return 1 if any(r.errors for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
