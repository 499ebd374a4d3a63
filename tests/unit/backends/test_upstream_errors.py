"""An upstream's error answers as gateway errors: a prompt too long keeps a code callers can act on."""

import json

import pytest

from seekgate import errors
from seekgate.backends.upstream import upstream_error


@pytest.mark.parametrize(
    "body",
    [
        # vLLM
        {"object": "error", "message": "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.", "type": "BadRequestError", "code": 400},
        # OpenAI
        {"error": {"message": "Too long.", "type": "invalid_request_error", "code": "context_length_exceeded"}},
        # llama.cpp's server
        {"error": {"code": 400, "message": "the request exceeds the available context size, try increasing it", "type": "exceed_context_size_error"}},
    ],
)
def test_a_prompt_longer_than_the_context_is_a_bad_request_with_the_context_length_code(body):
    error = upstream_error("vllm", 400, json.dumps(body).encode(), {})
    assert isinstance(error, errors.InvalidRequest) and error.code == "context_length_exceeded"


def test_other_bad_requests_carry_no_code():
    error = upstream_error("vllm", 400, b'{"error": {"message": "temperature must be at most 2"}}', {})
    assert isinstance(error, errors.InvalidRequest) and error.code is None and "temperature must be at most 2" in str(error)
