"""Repository context through the gateway and the CLI: `seekgate index` a real git repository,
then rag-code requests get cited context blocks (shown in x-seekgate-context), their citations
are checked against the snapshot, and `seekgate search` / `seekgate ask` answer from the index."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.fixtures.servers import Process, run_gateway
from tests.unit.context.test_index_retrieve import FILES

CONFIG = """
[server]
default_model = "smollm2-135m"
"""


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def rag_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rag")


@pytest.fixture(scope="module")
def shop(rag_dir: Path) -> tuple[Path, str]:
    root = rag_dir / "shop"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text.lstrip("\n"))
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "first")
    return root, _git(root, "rev-parse", "HEAD")


def _cli(rag_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SEEKGATE_SERVER__DATA_DIR": str(rag_dir / "data")}
    return subprocess.run([sys.executable, "-m", "seekgate.cli.main", *args], capture_output=True, text=True, input=stdin, env=env, timeout=600)


@pytest.fixture(scope="module")
def rag_gateway(rag_dir: Path, shop: tuple[Path, str]) -> Iterator[Process]:
    indexed = _cli(rag_dir, "index", str(shop[0]), "--quiet")
    assert indexed.returncode == 0, indexed.stderr
    assert indexed.stdout.startswith(f"shop@{shop[1][:12]}: 4 files, 4 indexed")
    with run_gateway(CONFIG, rag_dir) as server:
        yield server


@pytest.fixture
def client(rag_gateway: Process) -> openai.OpenAI:
    return openai.OpenAI(base_url=rag_gateway.base_url + "/v1", api_key="unused", max_retries=0, timeout=120)


def test_search_from_the_command_line_one_query_or_many(rag_dir: Path, rag_gateway: Process, shop: tuple[Path, str]):
    one = _cli(rag_dir, "search", "retry a failed upload with backoff", "--repo", "shop", "--top-k", "2", "--json")
    assert one.returncode == 0, one.stderr
    found = json.loads(one.stdout)
    assert found["commit"] == shop[1] and found["results"][0]["path"] == "src/net/retry.py"
    lines = '{"id": "a", "query": "make a PDF from an invoice"}\n{"id": 7, "query": "verify a session token"}\n'
    many = _cli(rag_dir, "search", "--jsonl", "--repo", "shop", "--top-k", "1", stdin=lines)
    assert many.returncode == 0, many.stderr
    rows = [json.loads(line) for line in many.stdout.splitlines()]
    assert [(r["id"], r["results"][0]["path"]) for r in rows] == [("a", "src/billing/invoice.py"), (7, "src/auth/tokens.go")]
    assert set(rows[0]["results"][0]) == {"path", "start_line", "end_line", "symbol", "score"}
    bad = _cli(rag_dir, "search", "x", "--repo", "nope")
    assert bad.returncode == 1 and "no index named 'nope'; indexed: shop" in bad.stderr


def test_a_rag_code_request_gets_cited_context_on_the_embedded_model(client: openai.OpenAI, shop: tuple[Path, str]):
    raw = client.chat.completions.with_raw_response.create(
        model="smollm2-135m", max_tokens=40, temperature=0,
        messages=[{"role": "user", "content": "How does the upload retry work?"}],
        extra_headers={"X-Task-Type": "rag-code", "X-Context-Refs": f"shop@{shop[1][:8]}"},
    )  # fmt: skip
    injected = raw.headers["x-seekgate-context"]
    assert injected.startswith(f"shop@{shop[1][:12]}: src/net/retry.py:4-15")  # the RetryPolicy class
    answer = raw.parse()
    context = answer.model_extra["seekgate"]["context"]  # type: ignore[index]
    assert context["commit"] == shop[1] and context["blocks"][0]["path"] == "src/net/retry.py"
    assert "citations" in context and "checked" in raw.headers["x-seekgate-citations"]
    assert answer.usage.prompt_tokens > 150  # the retrieved code went into the prompt


def test_citations_are_checked_and_made_up_ones_flagged(client: openai.OpenAI, shop: tuple[Path, str]):
    # The echo model repeats the question, so the answer cites exactly what the test wrote.
    cited = "See src/net/retry.py:9-13, src/net/retry.py:99 and src/net/nosuch.py:4."
    raw = client.chat.completions.with_raw_response.create(
        model="fake-echo", messages=[{"role": "user", "content": cited}],
        extra_headers={"X-Task-Type": "rag-code", "X-Context-Refs": "shop,docs/setup.md"},
    )  # fmt: skip
    assert raw.headers["x-seekgate-citations"] == (
        "3 checked, 2 flagged: src/net/retry.py:99 (line 99 is past the end (15 lines)); src/net/nosuch.py:4 (unknown path)"
    )
    context = raw.parse().model_extra["seekgate"]["context"]  # type: ignore[index]
    assert context["blocks"][0]["path"] == "docs/setup.md"  # named files come first, whole
    assert [c["ok"] for c in context["citations"]] == [True, False, False]
    # Streaming: the check arrives on the last chunk.
    chunks = list(client.chat.completions.create(
        model="fake-echo", messages=[{"role": "user", "content": cited}], stream=True,
        extra_headers={"X-Task-Type": "rag-code", "X-Context-Refs": "shop"},
    ))  # fmt: skip
    last = chunks[-1].model_extra["seekgate"]["context"]  # type: ignore[index]
    assert [c["problem"] for c in last["citations"] if not c["ok"]] == ["line 99 is past the end (15 lines)", "unknown path"]


def test_context_errors_name_the_problem(client: openai.OpenAI):
    for refs, words in (("nope", "no index named 'nope'"), ("shop@beef1234", "no index at commit 'beef1234'"),
                        ("shop,src/missing.py", "has no file 'src/missing.py'")):  # fmt: skip
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(model="fake-echo", messages=[{"role": "user", "content": "q"}], extra_headers={"X-Context-Refs": refs})
        assert words in caught.value.message
    # A task that asks for context when the request names no index uses the only one there is.
    raw = client.chat.completions.with_raw_response.create(
        model="fake-echo", messages=[{"role": "user", "content": "invoice pdf"}], extra_headers={"X-Task-Type": "rag-code"}
    )
    assert raw.headers["x-seekgate-context"].startswith("shop@")


def test_ask_answers_with_its_context_through_a_running_gateway(rag_dir: Path, rag_gateway: Process):
    asked = _cli(rag_dir, "ask", "Where is the retry policy?", "--repo", "shop", "--url", rag_gateway.base_url, "--model", "fake-echo", "--json")
    assert asked.returncode == 0, asked.stderr
    out = json.loads(asked.stdout)
    assert out["answer"] == "Where is the retry policy?" and out["context"]["blocks"][0]["path"] == "src/net/retry.py"


def test_the_index_embedder_serves_embeddings_and_the_openai_embedder_uses_them(rag_gateway: Process):
    from seekgate.context.embed import OpenAIEmbedder, WordLlamaEmbedder

    resp = httpx.post(rag_gateway.base_url + "/v1/embeddings", json={"input": ["a", "b"]}, timeout=60)
    assert resp.status_code == 200 and len(resp.json()["data"]) == 2
    # context.embedder = "openai" pointed at any /v1/embeddings server: here, this gateway's.
    remote = OpenAIEmbedder(rag_gateway.base_url + "/v1", "wordllama", api_key=None)
    texts = ["retry a failed upload", "verify a token"]
    assert remote.dim == 256 and (remote.embed(texts) - WordLlamaEmbedder().embed(texts)).max() < 1e-5


def test_context_counts_retrievals_and_flagged_citations(rag_gateway: Process, client: openai.OpenAI):
    before = httpx.get(rag_gateway.base_url + "/v1/context", timeout=30).json()
    assert [(d["repo"], d["files"]) for d in before["data"]] == [("shop", 4)] and before["embedder"] == "wordllama"
    client.chat.completions.create(model="fake-echo", messages=[{"role": "user", "content": "see nosuch.py:3"}], extra_headers={"X-Context-Refs": "shop"})
    after = httpx.get(rag_gateway.base_url + "/v1/context", timeout=30).json()["counters"]
    assert after["retrievals"] == before["counters"].get("retrievals", 0) + 1
    assert after["citations_flagged"] == before["counters"].get("citations_flagged", 0) + 1


def test_ask_in_process_without_a_gateway(rag_dir: Path, rag_gateway: Process):
    asked = _cli(rag_dir, "ask", "Where is the invoice rendered?", "--model", "fake-echo")
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.startswith("Where is the invoice rendered?") and "src/billing/invoice.py:" in asked.stdout


def test_an_unindexed_commit_is_indexed_on_demand_when_configured(rag_dir: Path, shop: tuple[Path, str]):
    root = shop[0]
    (root / "src/net/cache.py").write_text("def evict_least_recently_used(cache):\n    cache.pop_oldest()\n")
    _git(root, "add", "-A")
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "cache")
    second = _git(root, "rev-parse", "HEAD")
    with run_gateway(CONFIG + "\n[context]\nindex_on_demand = true\n", rag_dir) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0, timeout=120)
        raw = client.chat.completions.with_raw_response.create(
            model="fake-echo", messages=[{"role": "user", "content": "evict the least recently used entry"}],
            extra_headers={"X-Context-Refs": f"shop@{second[:10]}"},
        )  # fmt: skip
        assert raw.headers["x-seekgate-context"].startswith(f"shop@{second[:12]}: src/net/cache.py:1-2")
