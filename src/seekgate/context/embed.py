"""Embedders: text to unit-length float32 vectors, for dense retrieval and /v1/embeddings.

    wordllama   the default: a static embedding model (token vectors distilled from Llama 3's
                embedding table, averaged) whose weights ship inside its PyPI wheel, so it works
                on a fresh machine with no network; thousands of chunks per second on a CPU
    llamacpp    a GGUF embedding model run by llama.cpp in this process: bge-small-en-v1.5,
                e5-small-v2, nomic-embed-text (context.embedding_model = the file)
    openai      any OpenAI-compatible /v1/embeddings server (vLLM, Ollama, TEI, a cloud API)

Calls block; the gateway runs them on worker threads.
"""

from __future__ import annotations

import ctypes
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from seekgate import errors
from seekgate.settings import ContextSettings, resolve_secret

__all__ = ["Embedder", "LlamaCppEmbedder", "OpenAIEmbedder", "WordLlamaEmbedder", "open_embedder"]

log = logging.getLogger("seekgate.context")


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        """(len(texts), dim) float32, unit-length rows. `query` marks search queries, for models
        that embed queries and passages differently (e5's "query: " / "passage: ")."""
        ...


def _normalised(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


def open_embedder(settings: ContextSettings) -> Embedder:
    if settings.embedder == "llamacpp":
        if not settings.embedding_model:
            raise errors.InvalidRequest("context.embedder is llamacpp: set context.embedding_model to a GGUF embedding model file")
        return LlamaCppEmbedder(Path(settings.embedding_model).expanduser())
    if settings.embedder == "openai":
        if not settings.embedding_url or not settings.embedding_model:
            raise errors.InvalidRequest("context.embedder is openai: set context.embedding_url and context.embedding_model")
        return OpenAIEmbedder(settings.embedding_url, settings.embedding_model, resolve_secret(settings.embedding_api_key))
    return WordLlamaEmbedder()


class WordLlamaEmbedder:
    name = "wordllama"

    def __init__(self) -> None:
        import wordllama

        # The wheel carries the weights and the tokenizer, but wordllama's loader looks for the
        # tokenizer in a folder the wheel does not have and would then try the network; giving
        # the package folder as its cache points it at the files it ships.
        folder = Path(wordllama.__file__).parent
        try:
            self._model = wordllama.WordLlama.load(cache_dir=folder, disable_download=True)
        except FileNotFoundError as exc:
            raise errors.ModelNotReady(f"the wordllama wheel is missing its weights: {exc}") from None
        self.dim = int(self._model.embed(["probe"]).shape[1])

    def embed(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return _normalised(self._model.embed(list(texts), batch_size=64))


class OpenAIEmbedder:
    """Blocking HTTP to an OpenAI-compatible server; batched."""

    _BATCH = 128

    def __init__(self, base_url: str, model: str, api_key: str | None, timeout: float = 120.0) -> None:
        self.name = model
        self._url = base_url.rstrip("/") + "/embeddings"
        self._model = model
        self._headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {api_key}"} if api_key else {})}
        self._timeout = timeout
        self.dim = int(self._call(["probe"]).shape[1])

    def embed(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.vstack([self._call(list(texts[i : i + self._BATCH])) for i in range(0, len(texts), self._BATCH)])

    def _call(self, batch: list[str]) -> np.ndarray:
        body = json.dumps({"model": self._model, "input": batch, "encoding_format": "float"}).encode()
        request = urllib.request.Request(self._url, data=body, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as resp:
                data = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise errors.UpstreamError(f"embeddings server {self._url} answered {exc.code}: {exc.read()[:300].decode(errors='replace')}") from None
        except (urllib.error.URLError, TimeoutError) as exc:
            raise errors.UpstreamUnavailable(f"embeddings server {self._url} is unreachable: {getattr(exc, 'reason', exc)}") from None
        try:
            rows = sorted(data["data"], key=lambda d: d["index"])
            return _normalised(np.array([r["embedding"] for r in rows], dtype=np.float32))
        except (KeyError, TypeError, ValueError):
            raise errors.UpstreamError(f"embeddings server {self._url} sent something that is not an embeddings list") from None


class LlamaCppEmbedder:
    """A GGUF embedding model in this process. Sequences are embedded one context pass each,
    pooled the model's way (mean for models that declare none, such as decoders)."""

    _PREFIXES = {"e5": ("query: ", "passage: ")}

    def __init__(self, path: Path) -> None:
        import llama_cpp

        from seekgate.backends.llamacpp.engine import free_cores

        if not path.is_file():
            raise errors.ModelNotReady(f"embedding model {path} does not exist")
        self._llama = llama_cpp
        self._lock = threading.Lock()
        llama_cpp.llama_backend_init()
        params = llama_cpp.llama_model_default_params()
        self._model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
        if not self._model:
            raise errors.ModelNotReady(f"llama.cpp could not load {path}")
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        cparams = llama_cpp.llama_context_default_params()
        self._n_ctx = min(512, int(llama_cpp.llama_model_n_ctx_train(self._model)) or 512)
        cparams.n_ctx = cparams.n_batch = cparams.n_ubatch = self._n_ctx
        cparams.embeddings = True
        cparams.n_threads = cparams.n_threads_batch = free_cores()
        pooling = llama_cpp.LLAMA_POOLING_TYPE_MEAN
        cparams.pooling_type = pooling
        self._ctx = llama_cpp.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            raise errors.ModelNotReady(f"llama.cpp could not create an embedding context for {path}")
        self.dim = int(llama_cpp.llama_model_n_embd(self._model))
        self.name = path.stem
        lowered = self.name.lower()
        self._prefix = next((p for key, p in self._PREFIXES.items() if key in lowered), ("", ""))

    def embed(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        prefix = self._prefix[0] if query else self._prefix[1]
        with self._lock:
            return _normalised(np.array([self._one(prefix + t) for t in texts], dtype=np.float32).reshape(len(texts), self.dim))

    def _one(self, text: str) -> np.ndarray:
        llama_cpp = self._llama
        data = text.encode()
        buf = (llama_cpp.llama_token * (len(data) + 8))()
        n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buf, len(buf), True, False)
        if n > self._n_ctx:
            log.info("embedding input of %d tokens cut to the model's %d", n, self._n_ctx)
            n = self._n_ctx
        tokens = list(buf[:n])
        if not tokens:
            return np.zeros(self.dim, np.float32)
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self._ctx), True)
        arr = (llama_cpp.llama_token * len(tokens))(*tokens)
        if llama_cpp.llama_decode(self._ctx, llama_cpp.llama_batch_get_one(arr, len(tokens))) != 0:
            raise errors.SeekgateError("llama.cpp failed to embed a text")
        pointer = llama_cpp.llama_get_embeddings_seq(self._ctx, 0)
        return np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(self.dim,)).copy()

    def close(self) -> None:
        self._llama.llama_free(self._ctx)
        self._llama.llama_model_free(self._model)
