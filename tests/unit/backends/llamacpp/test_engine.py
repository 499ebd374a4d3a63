"""The embedded engine on real models: the bundled SmolLM2 and a tiny random DeepSeek-V2."""

import json
import threading
from pathlib import Path

import pytest

from seekgate import errors
from seekgate.backends.llamacpp.engine import EngineOptions, GenerationParams, LlamaEngine, _StopMatcher, grammar_for
from seekgate.core.types import FinishReason
from tests.fixtures.tiny_deepseek2 import write_tiny_deepseek2_gguf


def _run(engine, prompt, slot=0, **params):
    out: list[str] = []
    result = engine.generate(slot, prompt, GenerationParams(**params), out.append, threading.Event())
    return "".join(out), result


def test_loads_the_bundled_model_with_its_facts(smol):
    info = smol.info
    assert info.architecture == "llama" and 100e6 < info.parameters < 200e6
    assert info.context_tokens == 1024 and info.fim_tokens is None
    assert "im_start" in info.chat_template and smol.slots == 2


def test_greedy_is_deterministic_across_contexts(smol):
    prompt = smol.chat_prompt([{"role": "user", "content": "Name three colours."}])
    a, ra = _run(smol, prompt, slot=0, max_tokens=20, temperature=0)
    b, rb = _run(smol, prompt, slot=1, max_tokens=20, temperature=0)
    assert a == b and a and ra.completion_tokens == rb.completion_tokens


def test_prefix_cache_reuses_the_shared_prompt(smol):
    prompt = smol.chat_prompt([{"role": "user", "content": "Tell me about the sea."}])
    _run(smol, prompt, max_tokens=4, temperature=0)
    _, again = _run(smol, prompt, max_tokens=4, temperature=0)
    assert again.cached_tokens == len(prompt) - 1
    longer = smol.chat_prompt([{"role": "user", "content": "Tell me about the sea and the sky."}])
    _, partial = _run(smol, longer, max_tokens=4, temperature=0)
    assert 0 < partial.cached_tokens < len(longer) - 1


def test_max_tokens_and_seeded_sampling(smol):
    prompt = smol.chat_prompt([{"role": "user", "content": "Write a poem."}])
    text1, r1 = _run(smol, prompt, max_tokens=10, temperature=0.9, seed=7)
    text2, _ = _run(smol, prompt, max_tokens=10, temperature=0.9, seed=7)
    assert r1.finish_reason is FinishReason.LENGTH and r1.completion_tokens == 10
    assert text1 == text2


def test_json_schema_grammar_constrains_output(smol):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    prompt = smol.chat_prompt([{"role": "user", "content": "Pick a number."}])
    text, result = _run(smol, prompt, max_tokens=40, temperature=1.0, seed=3, grammar=grammar_for("json_schema", schema))
    assert result.finish_reason is FinishReason.STOP
    assert isinstance(json.loads(text)["n"], int)


def test_an_unenforceable_schema_is_a_clear_error():
    with pytest.raises(errors.InvalidRequest, match="JSON schema"):
        grammar_for("json_schema", {"type": "object", "properties": {"x": {"$ref": "#/nowhere"}}})


def test_cancel_stops_generation(smol):
    cancel = threading.Event()
    seen: list[str] = []

    def emit(text: str) -> None:
        seen.append(text)
        if len(seen) == 3:
            cancel.set()

    prompt = smol.chat_prompt([{"role": "user", "content": "Write a long essay."}])
    result = smol.generate(0, prompt, GenerationParams(max_tokens=500, temperature=0, grammar=grammar_for("json_schema", {"type": "string", "minLength": 2000})), emit, cancel)
    assert result.finish_reason is FinishReason.CANCELLED and result.completion_tokens <= 4


def test_prompt_longer_than_context_is_rejected(smol):
    with pytest.raises(errors.InvalidRequest, match="context window is 1024"):
        _run(smol, [1] * 1100, max_tokens=1)


def test_utf8_split_across_tokens_is_reassembled(smol):
    prompt = smol.tokenize("Emoji: 🎉🎉🎉 and ünïcödé", add_special=False, parse_special=False)
    # Replaying the prompt's own tokens through the detokeniser path must give back the text.
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    text = "".join(decoder.decode(smol._piece(t)) for t in prompt) + decoder.decode(b"", final=True)
    assert text == "Emoji: 🎉🎉🎉 and ünïcödé"


@pytest.mark.parametrize("mla_split", [True, False])
def test_deepseek_v2_architecture_loads_and_generates(tmp_path, mla_split):
    path = write_tiny_deepseek2_gguf(tmp_path / "tiny.gguf", mla_split=mla_split)
    engine = LlamaEngine(str(path), EngineOptions(parallel=1, context_tokens=256))
    try:
        info = engine.load()
        assert info.architecture == "deepseek2" and info.fim_tokens is not None
        text, result = _run(engine, engine.chat_prompt([{"role": "user", "content": "hi"}]), max_tokens=12, temperature=0)
        assert result.completion_tokens > 0
        fim = engine.completion_prompt("def f(x):\n", "    return x\n")
        pre, suf, mid = info.fim_tokens
        assert fim.count(pre) == fim.count(suf) == fim.count(mid) == 1
        assert fim.index(pre) < fim.index(suf) < fim.index(mid) == len(fim) - 1
        _, fim_result = _run(engine, fim, max_tokens=6, temperature=0)
        assert fim_result.completion_tokens > 0
    finally:
        engine.close()


def test_missing_file_is_not_ready(tmp_path):
    with pytest.raises(errors.ModelNotReady, match="does not exist"):
        LlamaEngine(str(tmp_path / "none.gguf"), EngineOptions()).load()


def test_corrupt_file_is_not_ready(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(errors.ModelNotReady, match="could not load"):
        LlamaEngine(str(bad), EngineOptions()).load()


@pytest.mark.parametrize(
    ("pieces", "stops", "expected", "stopped"),
    [
        (["Hello", " wor", "ld"], ("world",), "Hello ", True),
        (["a", "b", "c"], ("x",), "abc", False),
        (["ab", "c<", "/s", ">d"], ("</s>",), "abc", True),
        (["ab", "c<", "/t"], ("</s>",), "abc</t", False),
        (["", "end"], ("",), "end", False),
    ],
)
def test_stop_matcher_holds_back_only_possible_stop_prefixes(pieces, stops, expected, stopped):
    matcher = _StopMatcher(stops)
    out, hit = "", False
    for piece in pieces:
        text, hit = matcher.feed(piece)
        out += text
        if hit:
            break
    if not hit:
        out += matcher.flush("")
    assert out == expected and hit is stopped


def test_schema_grammar_keeps_control_characters_out_of_strings():
    grammar = grammar_for("json_schema", {"type": "object", "properties": {"s": {"type": "string"}}})
    char_rule = next(line for line in grammar.splitlines() if line.startswith("char ::="))
    assert r"\x00-\x1F" in char_rule


def test_bounded_integer_ranges_are_enforced(smol):
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 3, "maximum": 7}}, "required": ["n"]}
    prompt = smol.chat_prompt([{"role": "user", "content": "Pick a big number like 900."}])
    for seed in range(5):
        text, _ = _run(smol, prompt, max_tokens=20, temperature=1.5, seed=seed, grammar=grammar_for("json_schema", schema))
        assert 3 <= json.loads(text)["n"] <= 7
