"""Embedders: the offline default (wordllama) and a GGUF model on the embedded llama.cpp."""

import numpy as np
import pytest

from seekgate import errors
from seekgate.context.embed import LlamaCppEmbedder, WordLlamaEmbedder, open_embedder
from seekgate.settings import ContextSettings


def test_wordllama_works_offline_with_unit_vectors():
    embedder = open_embedder(ContextSettings())
    assert isinstance(embedder, WordLlamaEmbedder) and embedder.name == "wordllama"
    v = embedder.embed(["retry a failed upload", "retry the upload that failed", "bake a chocolate cake"])
    assert v.shape == (3, 256) and v.dtype == np.float32 and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2]
    assert np.array_equal(embedder.embed(["retry a failed upload"])[0], v[0])  # deterministic
    assert embedder.embed([]).shape == (0, 256)


def test_a_gguf_model_on_llama_cpp_embeds_with_mean_pooling(smollm2_path):
    embedder = LlamaCppEmbedder(smollm2_path)
    try:
        v = embedder.embed(["def add(a, b): return a + b", "def sum_two(x, y): return x + y", "The cathedral bells rang at noon.", ""])
        assert v.shape == (4, embedder.dim) and embedder.dim == 576
        assert np.allclose(np.linalg.norm(v[:3], axis=1), 1, atol=1e-5) and not v[3].any()  # empty text: a zero vector
        assert v[0] @ v[1] > v[0] @ v[2]
    finally:
        embedder.close()


def test_misconfigured_embedders_say_what_to_set(tmp_path):
    with pytest.raises(errors.InvalidRequest, match="embedding_model"):
        open_embedder(ContextSettings(embedder="llamacpp"))
    with pytest.raises(errors.ModelNotReady, match="does not exist"):
        open_embedder(ContextSettings(embedder="llamacpp", embedding_model=str(tmp_path / "missing.gguf")))
    with pytest.raises(errors.InvalidRequest, match="embedding_url"):
        open_embedder(ContextSettings(embedder="openai"))
    with pytest.raises(errors.UpstreamUnavailable, match="unreachable"):
        open_embedder(ContextSettings(embedder="openai", embedding_url="http://127.0.0.1:9/v1", embedding_model="m"))
