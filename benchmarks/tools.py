"""Tool-call quality and speed: schema validity, tool choice, exact arguments, time to the first
tool-call delta, over a generated set of conversations (the cases are built below from
templates; at least 100).

    .venv/bin/python benchmarks/tools.py                       # starts a gateway on the bundled model
    .venv/bin/python benchmarks/tools.py --base-url URL --model ALIAS [--limit N]

Prints figures; asserts nothing. Target: 100% schema-valid on every backend.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jsonschema
import openai

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fixtures.servers import run_gateway  # noqa: E402

TOOLS = {
    "get_weather": ("Current weather for a city", {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}}, "required": ["city", "unit"]}),
    "search_code": ("Search the repository for a symbol or text", {"type": "object", "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1, "maximum": 50}}, "required": ["query"]}),
    "read_file": ("Read a file of the repository", {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
    "run_tests": ("Run the test suite, optionally one test file", {"type": "object", "properties": {"target": {"type": "string"}, "verbose": {"type": "boolean"}}, "required": ["target", "verbose"]}),
    "convert_units": ("Convert a quantity between units", {"type": "object", "properties": {"value": {"type": "number"}, "from_unit": {"type": "string"}, "to_unit": {"type": "string"}}, "required": ["value", "from_unit", "to_unit"]}),
    "create_issue": ("Open an issue in the tracker", {"type": "object", "properties": {"title": {"type": "string"}, "priority": {"enum": ["low", "medium", "high"]}}, "required": ["title", "priority"]}),
}

CITIES = ["Paris", "Oslo", "Lima", "Cairo", "Tokyo", "Nairobi", "Quito", "Hanoi", "Perth", "Montreal"]
SYMBOLS = ["parse_config", "HttpClient", "retry_backoff", "UserModel", "render_page", "TokenBucket"]
FILES = ["src/app.py", "README.md", "setup.cfg", "tests/test_api.py", "docs/index.md", "Makefile"]


def cases() -> list[tuple[str, str, dict[str, object]]]:
    """(user message, expected tool, expected arguments)."""
    out: list[tuple[str, str, dict[str, object]]] = []
    for city, unit in itertools.product(CITIES, ["celsius", "fahrenheit"]):
        out.append((f"What's the weather in {city}? Give it in {unit}.", "get_weather", {"city": city, "unit": unit}))
    for symbol, limit in itertools.product(SYMBOLS, [5, 10, 20]):
        out.append((f"Find up to {limit} places where {symbol} is used.", "search_code", {"query": symbol, "limit": limit}))
    for path in FILES:
        out.append((f"Show me the contents of {path}.", "read_file", {"path": path}))
        out.append((f"Open {path} and read it.", "read_file", {"path": path}))
    for target, verbose in itertools.product(FILES[::2] + ["tests/"], [True, False]):
        out.append((f"Run the tests in {target}{' with verbose output' if verbose else ', quietly'}.", "run_tests", {"target": target, "verbose": verbose}))
    for value, (a, b) in itertools.product([3, 12.5, 100, 0.5], [("km", "miles"), ("kg", "pounds"), ("celsius", "fahrenheit")]):
        out.append((f"Convert {value} {a} to {b}.", "convert_units", {"value": value, "from_unit": a, "to_unit": b}))
    for title, priority in itertools.product(["Login page crashes", "Typo in docs", "Slow search"], ["low", "medium", "high"]):
        out.append((f"Open a {priority} priority issue titled '{title}'.", "create_issue", {"title": title, "priority": priority}))
    for city in CITIES:
        out.append((f"Is it raining in {city} right now? Use celsius.", "get_weather", {"city": city, "unit": "celsius"}))
    for symbol in SYMBOLS:
        out.append((f"Where is {symbol} defined?", "search_code", {"query": symbol}))
        out.append((f"grep the repo for {symbol}, at most 3 hits", "search_code", {"query": symbol, "limit": 3}))
    return out


def run(client: openai.OpenAI, model: str, limit: int | None) -> None:
    tools = [{"type": "function", "function": {"name": n, "description": d, "parameters": p}} for n, (d, p) in TOOLS.items()]
    selected = cases()[:limit] if limit else cases()
    valid = chosen = exact = calls = cut = 0
    first_delta: list[float] = []
    started = time.perf_counter()
    for text, tool, args in selected:
        t0 = time.perf_counter()
        stream = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": text}], tools=tools, tool_choice="required",
            parallel_tool_calls=False, temperature=0, max_tokens=120, stream=True,
        )  # fmt: skip
        name, pieces, seen, finish = None, [], False, None
        for chunk in stream:
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
            for d in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                if not seen:
                    first_delta.append(time.perf_counter() - t0)
                    seen = True
                name = name or d.function.name
                pieces.append(d.function.arguments or "")
        if name is None:
            cut += finish == "length"
            continue
        calls += 1
        try:
            got = json.loads("".join(pieces))
        except ValueError:
            cut += finish == "length"  # the token budget ran out inside the call: a prefix, not a wrong call
            continue
        try:
            jsonschema.validate(got, TOOLS[name][1])
            valid += 1
        except (jsonschema.ValidationError, KeyError):
            continue
        chosen += name == tool
        exact += name == tool and got == args
    n = len(selected)
    wall = time.perf_counter() - started
    print(f"\nmodel {model}: {n} cases, {calls} tool calls made, {wall:.0f} s")
    print(f"  schema-valid calls      {valid}/{n} = {100 * valid / n:.1f}%   (target 100%)")
    print(f"  cut by max_tokens       {cut}/{n}   (of the calls that finished, schema-valid: {valid}/{n - cut})")
    print(f"  correct tool            {chosen}/{n} = {100 * chosen / n:.1f}%")
    print(f"  exactly right arguments {exact}/{n} = {100 * exact / n:.1f}%")
    if first_delta:
        q = sorted(first_delta)
        print(f"  time to first tool-call delta: p50 {statistics.median(q) * 1000:.0f} ms, p95 {q[int(0.95 * (len(q) - 1))] * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", help="a running gateway (default: start one on the bundled model)")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--limit", type=int, help="run only the first N cases")
    args = parser.parse_args()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "?")
    print(f"machine: {os.cpu_count()} CPUs, {cpu}; python {platform.python_version()}; {len(cases())} cases")
    if args.base_url:
        run(openai.OpenAI(base_url=args.base_url.rstrip("/") + "/v1", api_key="unused", timeout=600), args.model, args.limit)
        return
    with tempfile.TemporaryDirectory() as tmp, run_gateway("[server]\nlog_level = 'warning'\n", Path(tmp)) as gateway:
        run(openai.OpenAI(base_url=gateway.base_url + "/v1", api_key="unused", timeout=600), args.model, args.limit)


if __name__ == "__main__":
    main()
