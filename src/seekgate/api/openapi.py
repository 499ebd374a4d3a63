"""The OpenAPI document, generated from the wire models, and a self-contained docs page
(no CDN: the gateway must document itself on an offline machine)."""

from __future__ import annotations

from typing import Any

import msgspec

from seekgate import __version__
from seekgate.api.openai import wire

__all__ = ["DOCS_HTML", "openapi_document"]

_ERROR = {"description": "Error in OpenAI's format: {\"error\": {message, type, param, code}}"}


def openapi_document() -> dict[str, Any]:
    (chat, completion, embeddings), components = msgspec.json.schema_components(
        [wire.ChatCompletionRequest, wire.CompletionRequest, wire.EmbeddingsRequest], ref_template="#/components/schemas/{name}"
    )

    def post(summary: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "post": {
                "summary": summary,
                "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
                "responses": {
                    "200": {"description": "JSON, or text/event-stream when stream is true"},
                    **{str(s): _ERROR for s in (400, 404, 413, 502, 503, 504)},
                },
            }
        }

    def get(summary: str) -> dict[str, Any]:
        return {"get": {"summary": summary, "responses": {"200": {"description": "OK"}}}}

    return {
        "openapi": "3.1.0",
        "info": {"title": "seekgate", "version": __version__, "description": "OpenAI-compatible gateway for local coding models"},
        "paths": {
            "/v1/chat/completions": post("OpenAI Chat Completions", chat),
            "/v1/completions": post("OpenAI text completion; fill-in-the-middle with `suffix`", completion),
            "/v1/embeddings": post("Embeddings from the context layer's embedder (float or base64)", embeddings),
            "/v1/models": get("Configured model aliases, their backends and readiness"),
            "/healthz": get("The process is up"),
            "/readyz": {
                "get": {
                    "summary": "The default model is loaded and every server backend is reachable",
                    "responses": {"200": {"description": "ready"}, "503": {"description": "not ready, with details"}},
                }
            },
        },
        "components": {"schemas": components},
    }


DOCS_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>seekgate API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em}
pre{background:#f4f4f4;padding:1em;overflow:auto;font-size:13px}h2{border-top:1px solid #ddd;padding-top:1em}
code{background:#f4f4f4;padding:0 .3em}</style></head>
<body><h1>seekgate API</h1><p>Machine-readable: <a href="/openapi.json"><code>/openapi.json</code></a></p>
<div id="paths">Loading…</div>
<script>
fetch('/openapi.json').then(r => r.json()).then(doc => {
  const out = document.getElementById('paths'); out.textContent = '';
  for (const [path, ops] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(ops)) {
    const h = document.createElement('h2'); h.textContent = method.toUpperCase() + ' ' + path; out.appendChild(h);
    const p = document.createElement('p'); p.textContent = op.summary; out.appendChild(p);
    const schema = op.requestBody && op.requestBody.content['application/json'].schema;
    if (schema) { const name = (schema.$ref || '').split('/').pop();
      const pre = document.createElement('pre');
      pre.textContent = JSON.stringify(doc.components.schemas[name] || schema, null, 2); out.appendChild(pre); }
  }
});
</script></body></html>
"""
