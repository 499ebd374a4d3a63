from collections.abc import Iterator
from pathlib import Path

import pytest

from seekgate.backends.llamacpp.engine import EngineOptions, LlamaEngine


@pytest.fixture(scope="session")
def smol(smollm2_path: Path) -> Iterator[LlamaEngine]:
    """The bundled SmolLM2 on the embedded engine: two contexts of 1024 tokens."""
    engine = LlamaEngine(str(smollm2_path), EngineOptions(parallel=2, context_tokens=1024))
    engine.load()
    yield engine
    engine.close()
