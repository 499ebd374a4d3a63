"""What the response cache adds to a request: the latency of a hit and the cost of a miss.

    .venv/bin/python benchmarks/cache.py [-n 2000] [--stores sqlite,redis] [--redis-url redis://...]

The set: N chat requests like a coding assistant's (a system prompt, a question with 0.5-3 KB of
code, temperature 0) and N answers of 1-4 KB of text, one in four with a tool call; seeded, so
every run builds the same set. Each store is timed through ResponseCache, one request at a
time on one event loop: `store` N answers, `lookup` each of them (hit) and N keys never stored
(miss). SQLite is a fresh file in a temporary folder (WAL, as the gateway runs it); Redis is a
redis-server this script starts on a free loopback port (memory only), unless --redis-url names
one.

Printed, in microseconds, p50 and p99 of each step, and the two paths a request takes:
    hit  = cache_key + lookup (hit)            [+ replay, when the client streams]
    miss = cache_key + lookup (miss) + store   (the backend's own time not included)
The target is a hit under 1 ms at p50. This script asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from seekgate.cache import ResponseCache, cache_key, replay
from seekgate.cache.redis import RedisStore
from seekgate.cache.sqlite import SqliteStore
from seekgate.core.types import ChatRequest, ChatResponse, FinishReason, Message, Role, Sampling, TextPart, ToolCall, Usage

PROSE = (
    "the function returns a list of values from cache when key is missing we call loader and store result "
    "this avoids recomputing expensive queries under load async await event loop thread pool connection "
    "retry timeout error handling test fixture assert parameter default argument return type annotation"
)
WORDS = PROSE.split()
CODE = """def load(self, key: str) -> bytes | None:
    row = self._db.execute("SELECT value FROM entries WHERE key = ?", (key,)).fetchone()
    if row is None:
        return None
    return bytes(row[0])
"""


def text(rng: random.Random, low: int, high: int) -> str:
    size = rng.randint(low, high)
    out: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(WORDS)
        out.append(word)
        length += len(word) + 1
        if rng.random() < 0.08:
            out.append(".\n\n" if rng.random() < 0.3 else ",")
    return " ".join(out)[:size]


def build(n: int, seed: int = 7) -> tuple[list[ChatRequest], list[ChatResponse]]:
    rng = random.Random(seed)
    requests, answers = [], []
    system = Message(role=Role.SYSTEM, content=(TextPart("You are a careful senior Python reviewer. " * 12),))
    for i in range(n):
        code = CODE * rng.randint(2, 12)
        question = Message(
            role=Role.USER, content=(TextPart(f"Request {i}: why is this slow?\n```python\n{code}```\n{text(rng, 50, 300)}"),)
        )
        requests.append(
            ChatRequest(model="auto", messages=(system, question), sampling=Sampling(temperature=0.0, max_tokens=1024))
        )
        calls = (ToolCall(id=f"call_{i}", name="read_file", arguments='{"path": "src/app/store.py"}'),) if i % 4 == 0 else ()
        answers.append(
            ChatResponse(
                model="deepseek-coder-v2-lite@2024-06-17",
                text=text(rng, 1024, 4096),
                finish_reason=FinishReason.TOOL_CALLS if calls else FinishReason.STOP,
                usage=Usage(input_tokens=rng.randint(300, 1500), output_tokens=rng.randint(250, 1000)),
                tool_calls=calls,
                backend="embedded",
            )
        )
    return requests, answers


def key_of(request: ChatRequest) -> str:
    return cache_key(
        request, task="review", pack="review@v3", model="deepseek-coder-v2-lite@2024-06-17#q4_k_m", context="repo@3f2a9c1:c12,c40"
    )


def percentiles(samples_us: list[float]) -> tuple[float, float]:
    ordered = sorted(samples_us)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def timed(step: Callable[[int], Awaitable[object]], n: int) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        await step(i)
        out.append((time.perf_counter() - started) * 1e6)
    return out


def timed_sync(step: Callable[[int], object], n: int) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        step(i)
        out.append((time.perf_counter() - started) * 1e6)
    return out


def row(name: str, samples: list[float]) -> None:
    p50, p99 = percentiles(samples)
    print(f"  {name:<34} {p50:>9.1f} {p99:>9.1f}")


async def run_store(name: str, cache: ResponseCache, requests: list[ChatRequest], answers: list[ChatResponse]) -> None:
    n = len(requests)
    keys = [key_of(r) for r in requests]
    unknown = [
        key_of(ChatRequest(model="auto", messages=r.messages, sampling=Sampling(temperature=0.0, seed=1))) for r in requests
    ]
    fresh = [ChatRequest(model="auto", messages=r.messages, sampling=Sampling(temperature=0.0, seed=2)) for r in requests]
    # Warm the connection, the page cache and the interpreter's paths first.
    for i in range(min(200, n)):
        await cache.store("warm" + keys[i], answers[i])
        await cache.lookup("warm" + keys[i])
    stores = await timed(lambda i: cache.store(keys[i], answers[i]), n)
    order = list(range(n))
    random.Random(1).shuffle(order)
    hits = await timed(lambda i: cache.lookup(keys[order[i]]), n)
    misses = await timed(lambda i: cache.lookup(unknown[i]), n)

    async def hit_path(i: int) -> None:
        answer = await cache.lookup(key_of(requests[order[i]]))
        assert answer is not None  # a benchmark of misses would be a wrong figure

    async def streamed_hit_path(i: int) -> None:
        answer = await cache.lookup(key_of(requests[order[i]]))
        assert answer is not None
        replay(answer)

    async def miss_path(i: int) -> None:
        key = key_of(fresh[i])
        if await cache.lookup(key) is None:
            await cache.store(key, answers[i])

    hit_paths = await timed(hit_path, n)
    streamed = await timed(streamed_hit_path, n)
    miss_paths = await timed(miss_path, n)
    print(
        f"{name}: {cache.stats.hits} hits, {cache.stats.misses} misses, {cache.stats.stored} stored, {cache.stats.failures} failures"
    )
    row("lookup, hit", hits)
    row("lookup, miss", misses)
    row("store", stores)
    row("hit  = key + lookup", hit_paths)
    row("hit  = key + lookup + replay", streamed)
    row("miss = key + lookup + store", miss_paths)


@contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (scripts/system_deps.sh installs it), or pass --redis-url")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = tempfile.mkdtemp(prefix="seekgate-bench-redis-")
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", folder]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"redis-server on port {port} did not start") from None
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        shutil.rmtree(folder, ignore_errors=True)


def redis_version(url: str) -> str:
    client = redis.Redis.from_url(url)
    try:
        return str(client.info("server")["redis_version"])
    finally:
        client.close()


async def main_async(args: argparse.Namespace) -> None:
    requests, answers = build(args.n)
    sizes = sorted(len(a.text) for a in answers)
    print(f"set: {args.n} requests ({sum(len(m.text) for r in requests for m in r.messages) // args.n} chars on average), "
          f"answers of {sizes[0]}-{sizes[-1]} chars (median {sizes[len(sizes) // 2]}), one in four with a tool call")  # fmt: skip
    print(f"  {'step (microseconds)':<34} {'p50':>9} {'p99':>9}")
    row("cache_key", timed_sync(lambda i: key_of(requests[i]), args.n))
    row("replay (answer -> chunks)", timed_sync(lambda i: replay(answers[i]), args.n))
    stores = args.stores.split(",")
    if "sqlite" in stores:
        with tempfile.TemporaryDirectory() as tmp:
            cache = ResponseCache(SqliteStore(Path(tmp) / "cache.db", 100_000), 86_400)
            await run_store(
                f"sqlite {sqlite3.sqlite_version} (WAL, synchronous=NORMAL, one worker thread)", cache, requests, answers
            )
            await cache.aclose()
    if "redis" in stores:
        with redis_server() if args.redis_url is None else _given(args.redis_url) as url:
            cache = ResponseCache(RedisStore(url), 86_400)
            await run_store(f"redis {redis_version(url)} (loopback, redis.asyncio)", cache, requests, answers)
            await cache.aclose()


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="requests (and answers) in the set")
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument(
        "--redis-url", default=None, help="use this Redis instead of starting one (its keys are written, not flushed)"
    )
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
