"""How well a model does chores delegated through scalpel: success, tool-call validity, steps, time.

    .venv/bin/python benchmarks/scalpel.py                       # the bundled SmolLM2-135M, embedded
    .venv/bin/python benchmarks/scalpel.py --config my.toml --model ds-coder-v2-lite --model smollm2-135m
    .venv/bin/python benchmarks/scalpel.py --endpoint http://127.0.0.1:8111/v1/chat/completions --model deepseek
    options: --limit N (the first N chores), --only intel|edit, --max-steps 8, --max-tokens 512, --timeout 120

The set: 34 chores on tests/fixtures/scalpel_repo (a small Python package with a README and a
checks script): 22 intel chores (look-ups, summaries, extractions, two answered as JSON) and 12
edits (a constant, a version, a typo, an unused import, a docstring, a new function, a rename
across files, ...). Each runs the real loop (delegate.run_chore) on a fresh copy of the
repository, edits with `python checks.py` as the verify command, and has a checker: the answer
holds the fact, or the files changed as asked and the checks still pass. A chore succeeds when
the loop ends with ok and its checker agrees.

A configured model runs through the gateway built in-process (create_app: task `scalpel`, its
guards and routing); `--endpoint` calls an OpenAI-compatible server directly. Printed per chore:
success, valid/all tool calls, steps and wall time; then per model: success rate, tool-call
validity (valid calls / all calls), mean steps, and p50/p90 wall time. This script asserts nothing.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import logging
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from seekgate.mcp.chat import Chat, endpoint_chat, gateway_chat
from seekgate.mcp.delegate import ChoreResult, run_chore
from seekgate.mcp.workspace import Workspace
from seekgate.settings import load_settings

FIXTURE = Path(__file__).parents[1] / "tests" / "fixtures" / "scalpel_repo"
VERIFY = f"{sys.executable} checks.py"


@dataclass
class Chore:
    id: str
    mode: str
    task: str
    check: Callable[[str, Path], bool]
    paths: tuple[str, ...] = ()
    fmt: str = "text"


@dataclass
class Outcome:
    chore: Chore
    result: ChoreResult
    passed: bool
    wall_s: float
    notes: list[str] = field(default_factory=list)


# -- checkers --------------------------------------------------------------------------------


def has(*needles: str) -> Callable[[str, Path], bool]:
    """The answer holds every needle (case-insensitive)."""
    return lambda answer, repo: all(n.lower() in answer.lower() for n in needles)


def matches(pattern: str) -> Callable[[str, Path], bool]:
    return lambda answer, repo: re.search(pattern, answer, re.IGNORECASE) is not None


def json_names(expected: set[str]) -> Callable[[str, Path], bool]:
    def check(answer: str, repo: Path) -> bool:
        try:
            data = json.loads(answer)
        except ValueError:
            return False
        names = set(data) if isinstance(data, list | dict) else set()
        return {str(n) for n in names} == expected

    return check


def file_has(path: str, *needles: str, absent: tuple[str, ...] = ()) -> Callable[[str, Path], bool]:
    def check(answer: str, repo: Path) -> bool:
        text = (repo / path).read_text()
        return all(n in text for n in needles) and not any(a in text for a in absent) and checks_pass(repo)

    return check


def python_says(snippet: str) -> Callable[[str, Path], bool]:
    """`snippet` (asserts on the edited package) exits 0 in the repository, and the checks pass."""

    def check(answer: str, repo: Path) -> bool:
        run = subprocess.run([sys.executable, "-c", snippet], check=False, cwd=repo, capture_output=True, timeout=60)
        return run.returncode == 0 and checks_pass(repo)

    return check


def checks_pass(repo: Path) -> bool:
    return subprocess.run([sys.executable, "checks.py"], check=False, cwd=repo, capture_output=True, timeout=60).returncode == 0


def function_in(path: str, name: str, test: Callable[[ast.FunctionDef], bool]) -> Callable[[str, Path], bool]:
    def check(answer: str, repo: Path) -> bool:
        try:
            tree = ast.parse((repo / path).read_text())
        except SyntaxError:
            return False
        found = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name]
        return bool(found) and test(found[0]) and checks_pass(repo)

    return check


def renamed(repo: Path) -> bool:
    leftovers = [p for p in repo.rglob("*.py") if "low_stock" in p.read_text()]
    return not leftovers and python_says("from shelf.items import running_low")("", repo)


PRICING, ITEMS, REPORT, INIT = "shelf/pricing.py", "shelf/items.py", "shelf/report.py", "shelf/__init__.py"

CHORES = [
    Chore("version", "intel", "What version is the shelf package? Look in shelf/__init__.py.", has("0.3.1"), (INIT,)),
    Chore("tax-rate", "intel", "What is the value of TAX_RATE in shelf/pricing.py?", matches(r"0?\.08|8 ?%"), (PRICING,)),
    Chore("format-fn", "intel", "Which function in shelf/pricing.py turns a price in cents into a display string? Give its name.", has("format_price"), (PRICING,)),
    Chore("item-fields", "intel", "List the fields of the Item dataclass in shelf/items.py.", has("name", "price_cents", "quantity"), (ITEMS,)),
    Chore("total-empty", "intel", "What does total_value in shelf/items.py return for an empty list?", matches(r"\b0\b|zero"), (ITEMS,)),
    Chore("summary-file", "intel", "Which file of the project defines the function summary_lines?", has("report.py")),
    Chore("currency", "intel", "What currency symbol does format_price in shelf/pricing.py put before the amount?", has("$"), (PRICING,)),
    Chore("count-pricing", "intel", "How many functions are defined in shelf/pricing.py? Answer with a number.", matches(r"\b3\b|three"), (PRICING,)),
    Chore("discount-error", "intel", "What exception does apply_discount raise when the percent is over 100?", has("ValueError"), (PRICING,)),
    Chore("license", "intel", "Under which license is shelf released? README.md says.", has("MIT"), ("README.md",)),
    Chore("python-version", "intel", "Which Python versions does pyproject.toml require?", has("3.10"), ("pyproject.toml",)),
    Chore("lookup-fn", "intel", "Which function in shelf/items.py finds an item by its name?", has("find_item"), (ITEMS,)),
    Chore("low-stock-file", "intel", "Which file defines the constant LOW_STOCK? Search the project.", has("items.py")),
    Chore("low-stock-value", "intel", "What is the value of the constant LOW_STOCK in shelf/items.py?", matches(r"\b3\b|three"), (ITEMS,)),
    Chore("pricing-json", "intel", "Give the names of the functions defined in shelf/pricing.py as a JSON array of strings.", json_names({"apply_discount", "add_tax", "format_price"}), (PRICING,), "json"),
    Chore("find-none", "intel", "What does find_item in shelf/items.py return when no item has the name?", has("None"), (ITEMS,)),
    Chore("low-stock-fn", "intel", "Which function in shelf/items.py returns the items that are low on stock?", has("low_stock"), (ITEMS,)),
    Chore("rounding", "intel", "How does apply_discount in shelf/pricing.py round its result?", matches(r"round|nearest"), (PRICING,)),
    Chore("case", "intel", "Does find_item in shelf/items.py compare names case-sensitively? Answer yes or no, then why.", matches(r"\bno\b|insensitive|not case"), (ITEMS,)),
    Chore("checks-command", "intel", "According to README.md, what command runs the checks?", has("checks.py"), ("README.md",)),
    Chore("fields-json", "intel", "Give the fields of the Item dataclass in shelf/items.py as a JSON object mapping each field name to its type.", json_names({"name", "price_cents", "quantity"}), (ITEMS,), "json"),
    Chore("report-imports", "intel", "Which modules of the shelf package does shelf/report.py import from?", has("items", "pricing"), (REPORT,)),
    Chore("edit-tax", "edit", "In shelf/pricing.py, change TAX_RATE from 0.08 to 0.09.", file_has(PRICING, "TAX_RATE = 0.09"), (PRICING,)),
    Chore("edit-low-stock", "edit", "In shelf/items.py, change LOW_STOCK from 3 to 5.", file_has(ITEMS, "LOW_STOCK = 5"), (ITEMS,)),
    Chore("edit-version", "edit", "Bump __version__ in shelf/__init__.py to 0.3.2.", file_has(INIT, '__version__ = "0.3.2"'), (INIT,)),
    Chore("edit-typo", "edit", "Fix the spelling mistake 'inventroy' in README.md.", file_has("README.md", "tiny inventory library", absent=("inventroy",)), ("README.md",)),
    Chore("edit-unused-import", "edit", "Remove the unused line `import os` from shelf/report.py.", file_has(REPORT, "def summary_lines", absent=("import os",)), (REPORT,)),
    Chore("edit-docstring", "edit", "Add a docstring to the function format_price in shelf/pricing.py.", function_in(PRICING, "format_price", lambda f: bool(ast.get_docstring(f))), (PRICING,)),
    Chore("edit-is-free", "edit", "Add a function is_free(price_cents: int) -> bool to shelf/pricing.py that returns True when the price is 0.", python_says("from shelf.pricing import is_free\nassert is_free(0) is True and is_free(5) is False"), (PRICING,)),
    Chore("edit-euro", "edit", "Make format_price in shelf/pricing.py show euros: the € sign instead of $.", python_says("from shelf.pricing import format_price\nassert format_price(1250) == '€12.50'"), (PRICING,)),
    Chore("edit-default-quantity", "edit", "Give the quantity field of the Item dataclass in shelf/items.py a default value of 1.", python_says("from shelf import Item\nassert Item('x', 100).quantity == 1"), (ITEMS,)),
    Chore("edit-type-hints", "edit", "Add type hints to summary_lines in shelf/report.py: it takes items: list[Item] and returns list[str].", function_in(REPORT, "summary_lines", lambda f: f.returns is not None and f.args.args[0].annotation is not None), (REPORT,)),
    Chore("edit-currency-constant", "edit", "In shelf/pricing.py, add a constant CURRENCY = \"$\" and use it in format_price instead of the literal $.", python_says("import inspect, shelf.pricing as p\nassert p.CURRENCY == '$' and 'CURRENCY' in inspect.getsource(p.format_price) and p.format_price(5) == '$0.05'"), (PRICING,)),
    Chore("edit-rename", "edit", "Rename the function low_stock in shelf/items.py to running_low, and update every file that uses it (shelf/__init__.py, shelf/report.py, checks.py).", lambda answer, repo: renamed(repo), (ITEMS,)),
]  # fmt: skip


# -- running ---------------------------------------------------------------------------------


@asynccontextmanager
async def gateway_chats(config: str | None, data_dir: Path) -> AsyncIterator[Callable[[str], Chat]]:
    """Chats through a gateway built in this process, one per model alias."""
    from seekgate.app import create_app

    overrides = {
        "server.data_dir": str(data_dir),
        "server.preload_default": False,
        "scalpel.enabled": False,  # the loop is called directly; no MCP server here
        "cache.enabled": False,
        "telemetry.log_requests": False,
        "telemetry.request_log": False,
    }
    settings = load_settings(config, overrides=overrides)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield lambda model: gateway_chat(app.state.gateway, task="scalpel", model=model)


async def run_one(chat: Chat, chore: Chore, scratch: Path, args: argparse.Namespace) -> Outcome:
    repo = scratch / chore.id
    shutil.copytree(FIXTURE, repo, ignore=shutil.ignore_patterns("__pycache__"))
    ws = Workspace(repo, writable=chore.mode == "edit")
    notes: list[str] = []
    started = time.perf_counter()
    result = await run_chore(
        chat, ws, chore.task, mode=chore.mode, paths=chore.paths, fmt=chore.fmt,  # type: ignore[arg-type]
        max_steps=args.max_steps, max_tokens=args.max_tokens, deadline_s=args.timeout,
        verify=VERIFY if chore.mode == "edit" else None, progress=lambda step, note: notes.append(note),
    )  # fmt: skip
    wall = time.perf_counter() - started
    passed = result.ok and await asyncio.to_thread(chore.check, result.answer, repo)
    return Outcome(chore, result, passed, wall, notes)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


def report(label: str, outcomes: list[Outcome]) -> None:
    n = len(outcomes)
    passed = sum(o.passed for o in outcomes)
    valid = sum(o.result.tool_calls for o in outcomes)
    invalid = sum(o.result.invalid_calls for o in outcomes)
    walls = [o.wall_s for o in outcomes]
    print(f"\n{label}: {n} chores")
    for mode in ("intel", "edit"):
        subset = [o for o in outcomes if o.chore.mode == mode]
        if subset:
            print(
                f"  {mode:<6} success {sum(o.passed for o in subset):>2}/{len(subset):<2} ({sum(o.passed for o in subset) / len(subset):.0%})"
            )
    print(f"  all    success {passed:>2}/{n:<2} ({passed / n:.0%})")
    print(f"  tool-call validity {valid}/{valid + invalid} ({valid / max(1, valid + invalid):.1%})")
    print(f"  steps per chore: mean {sum(o.result.steps for o in outcomes) / n:.1f}")
    print(
        f"  wall time per chore: mean {sum(walls) / n:.1f} s, p50 {percentile(walls, 0.5):.1f} s, p90 {percentile(walls, 0.9):.1f} s"
    )
    ended = {}
    for o in outcomes:
        reason = "ok" if o.result.ok else (o.result.error or "").split(":")[0].split(";")[0]
        ended[reason] = ended.get(reason, 0) + 1
    print("  how chores ended: " + ", ".join(f"{k} {v}" for k, v in sorted(ended.items(), key=lambda kv: -kv[1])))


async def bench(label: str, chat: Chat, chores: list[Chore], args: argparse.Namespace) -> list[Outcome]:
    print(f"\n== {label}")
    print(f"  {'chore':<24} {'mode':<5} {'pass':<4} {'calls':>7} {'steps':>5} {'wall s':>7}  end")
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="scalpel-bench-") as scratch:
        for chore in chores:
            o = await run_one(chat, chore, Path(scratch), args)
            r = o.result
            calls = f"{r.tool_calls}/{r.tool_calls + r.invalid_calls}"
            if r.ok:
                end = "ok" if o.passed else f"finished; check failed on {' '.join(r.answer.split())[:45]!r}"
            else:
                end = (r.error or "")[:70]
            print(
                f"  {chore.id:<24} {chore.mode:<5} {'yes' if o.passed else 'no':<4} {calls:>7} {r.steps:>5} {o.wall_s:>7.1f}  {end}",
                flush=True,
            )
            outcomes.append(o)
    report(label, outcomes)
    return outcomes


async def main(args: argparse.Namespace) -> None:
    chores = [c for c in CHORES if args.only in (None, c.mode)][: args.limit]
    print(
        f"scalpel benchmark: {len(chores)} chores, max_steps {args.max_steps}, max_tokens {args.max_tokens}, timeout {args.timeout:g} s"
    )
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, {platform.node()}")
    models = args.model or ["smollm2-135m"]
    if args.endpoint:
        for model in models:
            chat = endpoint_chat(args.endpoint, model, timeout_s=args.timeout, tool_mode=args.tool_mode)
            try:
                await bench(f"{model} at {args.endpoint} (tool_mode {args.tool_mode})", chat, chores, args)
            finally:
                await chat.aclose()
        return
    with tempfile.TemporaryDirectory(prefix="scalpel-bench-data-") as data:
        async with gateway_chats(args.config, Path(data)) as chat_for:
            for model in models:
                await bench(f"{model} through the gateway (task scalpel)", chat_for(model), chores, args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="a seekgate config file (models and backends beyond the defaults)")
    parser.add_argument("--model", action="append", help="a model alias (repeat for several); with --endpoint, the model name")
    parser.add_argument("--endpoint", help="an OpenAI-compatible chat-completions URL instead of the gateway")
    parser.add_argument("--tool-mode", default="native", choices=["native", "grammar", "json_schema"], help="with --endpoint")
    parser.add_argument("--limit", type=int, default=None, help="run the first N chores")
    parser.add_argument("--only", choices=["intel", "edit"], help="run one kind of chore")
    parser.add_argument("--max-steps", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per chore")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main(parser.parse_args()))
