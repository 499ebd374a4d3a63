"""Saved prefix states on the real engine: restored after a restart, bounded, refused by other models."""

import threading
from pathlib import Path

import numpy as np
import pytest

from seekgate.backends.llamacpp.engine import EngineOptions, GenerationParams, LlamaEngine
from seekgate.backends.llamacpp.prefixes import PrefixStore, fingerprint, prefix_length
from tests.fixtures.tiny_deepseek2 import write_tiny_deepseek2_gguf

MB = 1 << 20
STORY = "The lighthouse keeper counted ships every night and wrote their names in a book. " * 12


def _engine(path: Path, root: Path, *, memory: int = 64 * MB, disk: int = 256 * MB, parallel: int = 1) -> LlamaEngine:
    store = PrefixStore(root, fingerprint(path), memory_bytes=memory, disk_bytes=disk)
    engine = LlamaEngine(str(path), EngineOptions(parallel=parallel, context_tokens=1024, prefix_save_tokens=64), prefixes=store)
    engine.load()
    return engine


def _run(engine: LlamaEngine, prompt: list[int], slot: int = 0) -> tuple[str, int]:
    out: list[str] = []
    result = engine.generate(slot, prompt, GenerationParams(max_tokens=12, temperature=0), out.append, threading.Event())
    return "".join(out), result.cached_tokens


def _prompt(engine: LlamaEngine, question: str) -> list[int]:
    return engine.chat_prompt([{"role": "system", "content": STORY}, {"role": "user", "content": question}])


def test_a_restarted_engine_restores_the_prefix_and_answers_the_same(smollm2_path, tmp_path):
    first = _engine(smollm2_path, tmp_path)
    prompt = _prompt(first, "What did the keeper count?")
    cold, cached = _run(first, prompt)
    assert cached == 0 and len(prompt) > 64
    first.close()  # waits for the writer: the state is on disk now
    files = list((tmp_path / fingerprint(smollm2_path)).glob("*.kv"))
    assert len(files) == 1

    second = _engine(smollm2_path, tmp_path)
    try:
        again, cached = _run(second, prompt)
        assert cached == len(prompt) - 1  # everything but the last token came from disk
        assert again == cold
        assert second.prefixes is not None and second.prefixes.stats["restored"] == 1
        # A different question after the same system prompt reuses the shared part only.
        other = _prompt(second, "Where did he write the names?")
        _, cached = _run(second, other)
        assert cached == prefix_length(np.array(prompt), np.array(other))
    finally:
        second.close()


def test_a_session_that_lost_its_context_gets_its_prefix_back(smollm2_path, tmp_path):
    engine = _engine(smollm2_path, tmp_path, disk=0)  # memory tier only
    try:
        a = _prompt(engine, "Question A: what did he count?")
        b = engine.chat_prompt([{"role": "user", "content": "An unrelated question about apples " * 10}])
        answer_a, _ = _run(engine, a)
        _run(engine, b)  # takes the only context
        again, cached = _run(engine, a)
        assert cached == len(a) - 1 and again == answer_a
        assert not (tmp_path / fingerprint(smollm2_path)).exists() or not any((tmp_path / fingerprint(smollm2_path)).iterdir())
    finally:
        engine.close()


def test_a_longer_turn_replaces_the_state_it_extends(smollm2_path, tmp_path):
    engine = _engine(smollm2_path, tmp_path)
    try:
        turn1 = [{"role": "system", "content": STORY}, {"role": "user", "content": "Hello keeper."}]
        prompt1 = engine.chat_prompt(turn1)
        reply, _ = _run(engine, prompt1)
        turn2 = turn1 + [{"role": "assistant", "content": reply}, {"role": "user", "content": "And then?"}]
        _run(engine, engine.chat_prompt(turn2))
        engine.prefixes.flush()
        assert engine.prefixes.usage()["entries"] == 1
        assert len(list(engine.prefixes.folder.glob("*.kv"))) == 1
    finally:
        engine.close()


def test_disk_and_memory_stay_within_their_bounds(smollm2_path, tmp_path):
    probe = _engine(smollm2_path, tmp_path / "probe")
    _run(probe, probe.chat_prompt([{"role": "user", "content": f"Story 0: {STORY}"}]))
    probe.close()
    one_state = next((tmp_path / "probe").rglob("*.kv")).stat().st_size
    limit = int(one_state * 2.5)  # room for two states, not three
    engine = _engine(smollm2_path, tmp_path / "bounded", memory=limit, disk=limit)
    try:
        prompts = [engine.chat_prompt([{"role": "user", "content": f"Story {i}: {STORY}"}]) for i in range(4)]
        for p in prompts:
            _run(engine, p)
        engine.prefixes.flush()
        on_disk = list(engine.prefixes.folder.glob("*.kv"))
        assert len(on_disk) == 2 and sum(f.stat().st_size for f in on_disk) <= limit
        assert engine.prefixes.usage()["memory_bytes"] <= limit
        assert engine.prefixes.stats["evicted"] >= 2
        # The newest two survive; the oldest was evicted first.
        entry, length = engine.prefixes.best(np.array(prompts[0]))
        assert length < len(prompts[0]) - 1
        entry, length = engine.prefixes.best(np.array(prompts[3]))
        assert entry is not None and length >= len(prompts[3]) - 1
    finally:
        engine.close()


def test_a_state_from_another_model_is_refused(smollm2_path, tmp_path):
    engine = _engine(smollm2_path, tmp_path)
    prompt = _prompt(engine, "Count the ships.")
    _run(engine, prompt)
    engine.close()
    tiny = write_tiny_deepseek2_gguf(tmp_path / "tiny.gguf")
    assert fingerprint(tiny) != fingerprint(smollm2_path)
    # Someone copies SmolLM2's states into the tiny model's folder: they are not used.
    (tmp_path / fingerprint(tiny)).mkdir()
    for f in (tmp_path / fingerprint(smollm2_path)).glob("*.kv"):
        (tmp_path / fingerprint(tiny) / f.name).write_bytes(f.read_bytes())
    other = PrefixStore(tmp_path, fingerprint(tiny), memory_bytes=MB, disk_bytes=256 * MB)
    try:
        assert other.usage()["entries"] == 0 and other.stats["refused"] == 1
    finally:
        other.close()


def test_a_corrupt_file_is_refused_and_the_engine_computes_afresh(smollm2_path, tmp_path):
    engine = _engine(smollm2_path, tmp_path)
    prompt = _prompt(engine, "Name a ship.")
    cold, _ = _run(engine, prompt)
    engine.close()
    for f in (tmp_path / fingerprint(smollm2_path)).glob("*.kv"):
        data = bytearray(f.read_bytes())
        f.write_bytes(data[: len(data) // 2])  # truncated: tokens intact, state cut short
    engine = _engine(smollm2_path, tmp_path)
    try:
        again, cached = _run(engine, prompt)
        assert cached == 0 and again == cold
    finally:
        engine.close()


@pytest.mark.parametrize("a,b,n", [([1, 2, 3], [1, 2, 4], 2), ([1, 2], [1, 2, 3], 2), ([], [1], 0), ([5], [6], 0)])
def test_prefix_length(a, b, n):
    assert prefix_length(np.array(a, dtype=np.int32), np.array(b, dtype=np.int32)) == n
