"""Every bad input gets the right status, OpenAI's error shape and a message naming the problem;
the server keeps serving afterwards."""

import httpx
import openai
import pytest


def _post(gateway, body, path="/v1/chat/completions", **kw) -> httpx.Response:
    kw.setdefault("timeout", 120)
    if isinstance(body, (bytes, str)):
        return httpx.post(gateway.base_url + path, content=body, headers={"content-type": "application/json"}, **kw)
    return httpx.post(gateway.base_url + path, json=body, **kw)


def _error(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    return err


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2", "{\"messages\": [}"])
def test_malformed_json_is_400(gateway, body):
    err = _error(_post(gateway, body), 400)
    assert "JSON" in err["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, None),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"type": "audio", "x": 1}]}]}, "messages[0].content[0].type"),
        ({"messages": [{"role": "user", "content": "x"}], "temperature": 3}, "temperature"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "x"}], "top_p": "high"}, "top_p"),
        ({"messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
        ({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "yaml"}}, "response_format.type"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_schema"}}, "response_format.json_schema"),
    ],
)
def test_schema_violations_are_400_naming_the_field(gateway, body, param):
    err = _error(_post(gateway, body), 400)
    assert err["type"] == "invalid_request_error"
    if param is None:
        assert "messages" in err["message"]
    else:
        assert err["param"] == param and param in err["message"]


def test_n_other_than_one_is_a_clear_error(client: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="fake-fixed", messages=[{"role": "user", "content": "x"}], n=2)
    assert info.value.body["param"] == "n" and "n must be 1" in info.value.message


def test_unknown_model_is_404_listing_the_known_ones(client: openai.OpenAI):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    assert info.value.body["code"] == "model_not_found"
    assert "gpt-9" in info.value.message and "smollm2-135m" in info.value.message and "ds-coder-v2-lite" in info.value.message


def test_unknown_model_in_completions_is_404(client: openai.OpenAI):
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="gpt-9", prompt="x")


def test_body_over_the_limit_is_413(gateway):
    big = {"model": "fake-fixed", "messages": [{"role": "user", "content": "x" * 70_000}]}
    err = _error(_post(gateway, big), 413)
    assert "limit" in err["message"]


def test_chunked_body_over_the_limit_is_413(gateway):
    def chunks():
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}]}'

    resp = httpx.post(gateway.base_url + "/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
    _error(resp, 413)


def test_image_to_a_text_model_is_a_clear_error(client: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="smollm2-135m",
            messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}],
        )
    assert "images" in info.value.message


def test_prompt_longer_than_the_context_is_400(client: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="smol-tight", messages=[{"role": "user", "content": "word " * 3000}], max_tokens=4)
    assert info.value.body["code"] == "context_length_exceeded" and "2048" in info.value.message


@pytest.mark.parametrize(("field", "value"), [("logprobs", True), ("echo", True), ("prompt", ["a", "b"])])
def test_unsupported_completion_options_are_named(gateway, field, value):
    body = {"model": "fake-fixed", "prompt": "x", field: value}
    err = _error(_post(gateway, body, "/v1/completions"), 400)
    assert err["param"] == field


def test_unknown_route_and_method_use_the_error_shape(gateway):
    _error(httpx.get(gateway.base_url + "/v1/nothing"), 404)
    _error(httpx.get(gateway.base_url + "/v1/chat/completions"), 405)


def test_server_keeps_serving_after_bad_input(client: openai.OpenAI, gateway):
    for body in (b"{", b"[]", b'{"messages": null}'):
        _post(gateway, body)
    resp = client.chat.completions.create(model="fake-fixed", messages=[{"role": "user", "content": "x"}])
    assert resp.choices[0].message.content
