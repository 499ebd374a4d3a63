"""POST /v1/embeddings with the real openai SDK: the default embedder (wordllama), offline."""

import base64

import numpy as np
import openai
import pytest


def test_embeddings_in_float_and_base64_agree_and_keep_order(client: openai.OpenAI):
    texts = ["retry a failed upload", "def retry_upload(): ...", "the weather in Paris"]
    floats = client.embeddings.create(model="wordllama", input=texts)
    assert floats.model == "wordllama" and [d.index for d in floats.data] == [0, 1, 2]
    matrix = np.array([d.embedding for d in floats.data])
    assert matrix.shape == (3, 256) and np.allclose(np.linalg.norm(matrix, axis=1), 1, atol=1e-5)
    assert matrix[0] @ matrix[1] > matrix[0] @ matrix[2]  # related texts are closer
    # Asked for explicitly, base64 comes back as the SDK received it: little-endian float32.
    b64 = client.embeddings.create(model="wordllama", input=texts, encoding_format="base64")
    decoded = np.array([np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") for d in b64.data])  # type: ignore[arg-type]
    assert np.allclose(decoded, matrix, atol=1e-6)
    one = client.embeddings.create(model="wordllama", input="retry a failed upload")
    assert np.allclose(one.data[0].embedding, matrix[0], atol=1e-6) and one.usage.prompt_tokens > 0


@pytest.mark.parametrize(
    "kwargs,status,words",
    [
        ({"model": "bge-huge", "input": "x"}, 404, "known models: wordllama"),
        ({"model": "wordllama", "input": [[1, 2, 3]]}, 400, "token-id input"),
        ({"model": "wordllama", "input": []}, 400, "input is empty"),
        ({"model": "wordllama", "input": "x", "dimensions": 64}, 400, "256-dimension"),
    ],
)
def test_bad_embedding_requests_get_clear_errors(client: openai.OpenAI, kwargs, status, words):
    with pytest.raises(openai.APIStatusError) as caught:
        client.embeddings.create(**kwargs)
    assert caught.value.status_code == status and words in caught.value.message
