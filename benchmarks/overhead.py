"""How much the gateway costs on top of an upstream: throughput, latency and CPU per request.

    .venv/bin/python benchmarks/overhead.py [--quick] [--seconds S] [--kind plain] [--concurrency 64]
                                            [--token-interval-ms MS] [--no-pin]

Three processes besides this one: a cheap mock upstream (benchmarks/_mock_upstream.py), the
gateway (`seekgate serve`, one worker) pointed at it, and a load client (aiohttp). The client
drives each concurrency level straight at the mock and then through the gateway, plain and
streamed; the difference is what the gateway adds. Wall-clock figures move with whatever else
the machine runs, so the gateway's CPU time per request (utime + stime from /proc) is the
figure to compare between runs. It prints figures and never fails on a missed target.

By default the mock sends a stream's chunks back to back (yielding between writes), which is
the cheapest case for the gateway; --token-interval-ms spaces them like a model's tokens, so
each chunk costs the gateway a wake-up of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import multiprocessing as mp
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, replace
from importlib import metadata
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Literal

import aiohttp

HERE = Path(__file__).resolve().parent
CHUNKS = 64  # content chunks per streamed answer; the stream CPU target is for this many
PLAIN = b'{"model":"up","messages":[{"role":"user","content":"hi"}],"max_tokens":16}'
STREAM = PLAIN[:-1] + b',"stream":true,"stream_options":{"include_usage":true}}'
TARGET_CPU_MS = {"plain": 1.0, "stream": 3.0}
TARGET_ADDED_P50_MS = 1.0
TARGET_RPS_C64 = 1000.0
MAX_REQUESTS = 200_000  # per run, so a very fast target cannot run away with memory

Mode = Literal["direct", "gateway"]
Kind = Literal["plain", "stream"]


@dataclass(frozen=True)
class Spec:
    mode: Mode
    kind: Kind
    concurrency: int
    url: str
    warmup_s: float
    seconds: float


@dataclass(frozen=True)
class Row:
    spec: Spec
    ok: int
    errors: int
    first_error: str | None
    elapsed_s: float
    p50_ms: float
    p99_ms: float
    ttfc_p50_ms: float | None  # time to the first body bytes; streams only
    gateway_cpu_ms: float | None = None  # per request; filled in by the parent for gateway runs
    gateway_queued_pct: float | None = None  # of the run, the gateway waited for a CPU (contention)
    upstream_cpu_ms: float | None = None

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s else 0.0


# --- load client: runs in its own process --------------------------------------------------


class _BadAnswer(Exception):
    pass


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)] if sorted_values else math.nan


async def _plain(session: aiohttp.ClientSession, url: str) -> tuple[float, None]:
    t0 = time.perf_counter()
    async with session.post(url, data=PLAIN, headers={"Content-Type": "application/json"}) as resp:
        body = await resp.read()
        if resp.status != 200 or not body.startswith(b"{"):
            raise _BadAnswer(f"HTTP {resp.status}: {body[:200]!r}")
    return time.perf_counter() - t0, None


async def _stream(session: aiohttp.ClientSession, url: str) -> tuple[float, float]:
    t0 = time.perf_counter()
    first: float | None = None
    tokens = 0
    carry = b""  # the end of the previous read, so a token split across reads is still counted
    async with session.post(url, data=STREAM, headers={"Content-Type": "application/json"}) as resp:
        if resp.status != 200:
            raise _BadAnswer(f"HTTP {resp.status}: {(await resp.read())[:200]!r}")
        async for data in resp.content.iter_any():
            if first is None:
                first = time.perf_counter()
            window = carry + data
            tokens += window.count(b"tok ") - carry.count(b"tok ")
            carry = window[-16:]
    if first is None or tokens != CHUNKS or not carry.rstrip().endswith(b"data: [DONE]"):
        raise _BadAnswer(f"stream ended after {tokens} of {CHUNKS} tokens, last bytes {carry!r}")
    return time.perf_counter() - t0, first - t0


async def _drive(spec: Spec, conn: Connection) -> Row:
    one = _plain if spec.kind == "plain" else _stream
    latencies: list[float] = []
    firsts: list[float] = []
    errors: list[str] = []
    started = 0
    connector = aiohttp.TCPConnector(limit=spec.concurrency, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, skip_auto_headers=("User-Agent",)) as session:

        async def worker(deadline: float, record: bool) -> None:
            nonlocal started
            while time.perf_counter() < deadline and started < MAX_REQUESTS:
                started += 1
                try:
                    total, ttfc = await one(session, spec.url)
                except (aiohttp.ClientError, TimeoutError, _BadAnswer) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                if record:
                    latencies.append(total)
                    if ttfc is not None:
                        firsts.append(ttfc)

        # Warm up at the same concurrency, which also opens the pooled connections.
        warm_until = time.perf_counter() + spec.warmup_s
        await asyncio.gather(*(worker(warm_until, record=False) for _ in range(spec.concurrency)))
        started, errors = 0, []
        conn.send("warm")
        conn.recv()  # the parent reads the CPU counters, then says go
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(t0 + spec.seconds, record=True) for _ in range(spec.concurrency)))
        elapsed = time.perf_counter() - t0
    latencies.sort()
    firsts.sort()
    return Row(
        spec=spec,
        ok=len(latencies),
        errors=len(errors),
        first_error=errors[0] if errors else None,
        elapsed_s=elapsed,
        p50_ms=_percentile(latencies, 0.50) * 1e3,
        p99_ms=_percentile(latencies, 0.99) * 1e3,
        ttfc_p50_ms=_percentile(firsts, 0.50) * 1e3 if firsts else None,
    )


def _client_main(conn: Connection) -> None:
    """Serve run requests from the parent until it stops us."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    import uvloop

    while True:
        conn.send(uvloop.run(_drive(conn.recv(), conn)))


# --- processes ------------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, of its reaped children, and of its live descendants."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except FileNotFoundError:
        return 0.0
    total = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # stat fields 14..17
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            total += sum(_cpu_seconds(int(c)) for c in (task / "children").read_text().split())
    return total


def _queued_seconds(pid: int) -> float:
    """Time the process's threads spent runnable but waiting for a CPU (schedstat field 2)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=12)  # the gateway drains for up to 10 s
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _start_mock(stack: contextlib.ExitStack, interval_ms: float) -> tuple[subprocess.Popen[str], int]:
    # Each child gets a session of its own, which keeps a terminal's Ctrl-C away from it: the
    # parent catches it and the ExitStack stops the children in order.
    cmd = [sys.executable, str(HERE / "_mock_upstream.py"), "--chunks", str(CHUNKS), "--interval-ms", str(interval_ms)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True)
    stack.callback(_stop, proc)
    assert proc.stdout is not None
    if not (line := proc.stdout.readline()).startswith("PORT "):
        raise RuntimeError(f"the mock upstream did not start (exit {proc.poll()}, said {line!r})")
    return proc, int(line.split()[1])


def _start_gateway(stack: contextlib.ExitStack, mock_port: int, workdir: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    config = workdir / "bench.toml"
    config.write_text(
        f'[server]\ndefault_model = "up"\n'
        f'[backends.mock]\ntype = "openai"\nbase_url = "http://127.0.0.1:{mock_port}/v1"\n'
        f'[models.up]\nbackend = "mock"\nupstream_model = "mock"\n'
    )
    port, log = _free_port(), workdir / "gateway.log"
    # SEEKGATE_* variables from the caller's shell would change what is measured.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEEKGATE_")}
    cmd = [sys.executable, "-m", "seekgate.cli.main", "--config", str(config)]
    cmd += ["serve", "--port", str(port), "--log-level", "warning"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    stack.callback(_stop, proc)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the gateway exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            if resp.status == 200:
                return proc, port, log
        time.sleep(0.1)
    raise RuntimeError(f"the gateway was not ready within 60 s:\n{log.read_text()[-3000:]}")


def _start_client(stack: contextlib.ExitStack) -> tuple[int, Connection]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_client_main, args=(child,), name="bench-client", daemon=True)
    proc.start()

    stack.callback(proc.join)
    stack.callback(proc.terminate)  # it holds no state worth a graceful goodbye
    assert proc.pid is not None
    return proc.pid, parent


def _run(conn: Connection, spec: Spec, gateway_pid: int | None, mock_pid: int) -> Row:
    conn.send(spec)
    if conn.recv() != "warm":
        raise RuntimeError("the load client lost step")
    pid = gateway_pid or mock_pid  # the mock's figures stand in, unused, for direct runs
    gw0, q0, up0 = _cpu_seconds(pid), _queued_seconds(pid), _cpu_seconds(mock_pid)
    conn.send("go")
    row = conn.recv()
    assert isinstance(row, Row)
    gw1, q1, up1 = _cpu_seconds(pid), _queued_seconds(pid), _cpu_seconds(mock_pid)
    n = max(row.ok + row.errors, 1)
    if gateway_pid:
        row = replace(row, gateway_cpu_ms=(gw1 - gw0) * 1e3 / n, gateway_queued_pct=(q1 - q0) * 100 / row.elapsed_s)
    return replace(row, upstream_cpu_ms=(up1 - up0) * 1e3 / n)


# --- report ---------------------------------------------------------------------------------


def _machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "unknown")
    libs = ", ".join(f"{p} {metadata.version(p)}" for p in ("uvicorn", "starlette", "aiohttp", "msgspec", "uvloop", "httptools"))
    return (
        f"machine: nproc {os.cpu_count()} (usable {len(os.sched_getaffinity(0))}), {model}\n"
        f"python {platform.python_version()} ({sys.executable}); {libs}\n"
        f"load average at start: {_load()}"
    )


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())  # other work on the machine moves wall times


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None or math.isnan(value) else format(value, spec)


def _added(rows: list[Row], row: Row, first_chunk: bool = False) -> float | None:
    """The gateway run's p50 (or time to first chunk) minus the direct run's at the same kind and concurrency."""
    same = (row.spec.kind, row.spec.concurrency)
    base = next((r for r in rows if r.spec.mode == "direct" and (r.spec.kind, r.spec.concurrency) == same), None)
    if row.spec.mode != "gateway" or base is None:
        return None
    mine, theirs = (row.ttfc_p50_ms, base.ttfc_p50_ms) if first_chunk else (row.p50_ms, base.p50_ms)
    return mine - theirs if mine is not None and theirs is not None else None


_COLUMNS = (("mode", 7), ("kind", 6), ("conc", 4), ("req/s", 7), ("p50 ms", 7), ("p99 ms", 7), ("ttfc p50", 8),
            ("+p50 ms", 8), ("gw cpu ms/req", 13), ("gw queued", 9), ("up cpu ms/req", 13), ("errors", 6))  # fmt: skip


def _print_table(rows: list[Row]) -> None:
    def line(cells: list[str]) -> None:
        print("  ".join(c.rjust(w) for c, (_, w) in zip(cells, _COLUMNS)))

    line([name for name, _ in _COLUMNS])
    print("-" * (sum(w + 2 for _, w in _COLUMNS) - 2))
    for r in rows:
        queued = "-" if r.gateway_queued_pct is None else f"{r.gateway_queued_pct:.0f}%"
        line([r.spec.mode, r.spec.kind, str(r.spec.concurrency), f"{r.rps:.0f}", _fmt(r.p50_ms), _fmt(r.p99_ms),
              _fmt(r.ttfc_p50_ms), _fmt(_added(rows, r), "+.2f"), _fmt(r.gateway_cpu_ms, ".3f"), queued,
              _fmt(r.upstream_cpu_ms, ".3f"), str(r.errors)])  # fmt: skip
    print(
        "ttfc: time to the first body bytes. +p50: gateway p50 minus direct p50. gw queued: share of the run the\n"
        "gateway was runnable but waiting for a CPU (other load; it inflates wall times, not CPU). up: the mock."
    )
    for r in rows:
        if r.first_error:
            print(f"  {r.spec.mode}/{r.spec.kind}/c{r.spec.concurrency}: {r.errors} errors; first: {r.first_error}")


def _print_targets(rows: list[Row]) -> None:
    gw: dict[tuple[str, int], Row] = {(r.spec.kind, r.spec.concurrency): r for r in rows if r.spec.mode == "gateway"}
    lines: list[tuple[bool, str]] = []
    for kind, target in TARGET_CPU_MS.items():
        cpu = {c: r.gateway_cpu_ms for (k, c), r in gw.items() if k == kind and r.gateway_cpu_ms is not None}
        shown = ", ".join(f"c{c} {v:.3f}" for c, v in cpu.items())
        what = "request" if kind == "plain" else f"{CHUNKS}-chunk stream"
        if cpu:
            lines.append((max(cpu.values()) <= target, f"gateway CPU <= {target:g} ms per {what}: {shown} ms"))
    for kind, what in (("plain", "p50 latency"), ("stream", "p50 time to first chunk")):
        if (added := _added(rows, gw[(kind, 1)], first_chunk=kind == "stream") if (kind, 1) in gw else None) is not None:
            lines.append((added <= TARGET_ADDED_P50_MS, f"<= {TARGET_ADDED_P50_MS:g} ms added {what} at concurrency 1 ({kind}): {added:+.3f} ms"))
    if (row := gw.get(("plain", 64))) is not None:
        lines.append((row.rps >= TARGET_RPS_C64, f">= {TARGET_RPS_C64:g} req/s through the gateway at concurrency 64 (plain): {row.rps:.0f}"))
    print("\ntargets:")
    for ok, text in lines:
        print(f"  [{'met   ' if ok else 'MISSED'}] {text}")
    if row is not None and row.gateway_cpu_ms:
        # What one core could serve if the gateway had it to itself and the client and mock were free.
        print(f"  (CPU-bound ceiling of one gateway worker, plain: {1000 / row.gateway_cpu_ms:.0f} req/s)")


# --- main -----------------------------------------------------------------------------------


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs (about 30 s in all)")
    parser.add_argument("--seconds", type=float, help="measured seconds per run (default 8, or 1.5 with --quick)")
    parser.add_argument("--kind", choices=["plain", "stream"], action="append", help="only this kind (repeatable)")
    parser.add_argument("--concurrency", type=int, action="append", help="only this concurrency (repeatable)")
    parser.add_argument("--token-interval-ms", type=float, default=0.0, help="pause between streamed chunks (default 0)")
    parser.add_argument("--no-pin", action="store_true", help="do not give the gateway a CPU of its own")
    args = parser.parse_args()
    seconds = args.seconds or (1.5 if args.quick else 8.0)
    warmup = 0.4 if args.quick else 1.0
    kinds: list[Kind] = args.kind or ["plain", "stream"]
    levels: list[int] = args.concurrency or [1, 8, 64]
    # With two or more CPUs the gateway gets the first to itself and the mock and client share
    # the rest, so the gateway is not time-sliced with its own load generator.
    cpus = sorted(os.sched_getaffinity(0))
    gw_cpus, load_cpus = ({cpus[0]}, set(cpus[1:])) if len(cpus) >= 2 and not args.no_pin else (set(cpus), set(cpus))

    print(_machine())
    print(f"runs: {seconds:g} s measured after {warmup:g} s warm-up at the same concurrency; streams of {CHUNKS} chunks "
          f"{args.token_interval_ms:g} ms apart; gateway on CPU {sorted(gw_cpus)}, mock and client on CPU {sorted(load_cpus)}\n",
          flush=True)  # fmt: skip
    signal.signal(signal.SIGTERM, _interrupt)  # unwind like Ctrl-C, so the ExitStack stops every process
    rows: list[Row] = []
    try:
        with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="seekgate-bench-") as tmp:
            mock, mock_port = _start_mock(stack, args.token_interval_ms)
            gateway, gw_port, log = _start_gateway(stack, mock_port, Path(tmp))
            client_pid, conn = _start_client(stack)
            for pid, cpu_set in ((gateway.pid, gw_cpus), (mock.pid, load_cpus), (client_pid, load_cpus)):
                os.sched_setaffinity(pid, cpu_set)
            targets: tuple[tuple[Mode, int], ...] = (("direct", mock_port), ("gateway", gw_port))
            for kind, concurrency, (mode, port) in itertools.product(kinds, levels, targets):
                spec = Spec(mode, kind, concurrency, f"http://127.0.0.1:{port}/v1/chat/completions", warmup, seconds)
                rows.append(_run(conn, spec, gateway.pid if mode == "gateway" else None, mock.pid))
                print(f"  {mode}/{kind}/c{concurrency}: {rows[-1].rps:.0f} req/s", file=sys.stderr, flush=True)
            if gateway.poll() is not None:
                print(f"the gateway exited during the runs ({gateway.returncode})")
            gateway_log = log.read_text().strip()
        print(f"\nload average at end: {_load()}\n")
        _print_table(rows)
        _print_targets(rows)
        if gateway_log:
            print(f"\ngateway log ({len(gateway_log.splitlines())} lines), the last:\n{gateway_log[-2000:]}")
    except KeyboardInterrupt:
        print("interrupted; every process stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
