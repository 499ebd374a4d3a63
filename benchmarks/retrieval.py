"""Retrieval quality and speed of seekgate's code index, on real open-source Python.

    .venv/bin/python benchmarks/retrieval.py [--packages aiohttp,jinja2,...] [--queries 400] [--store sqlite|postgres]

The set: the packages' own source from this environment's site-packages (about 110k lines by
default). Queries are the first sentence of each function's or method's docstring; the indexed
copy has every docstring removed (its lines blanked, so line numbers stay), and the gold answer
is the function's path and lines. A query is a description of behaviour, never a name.

Printed: indexing throughput (files/s, lines/s, embeddings included); Recall@1/5/10 and MRR at
file level (a result in the gold file) and chunk level (a result overlapping at least half of
the gold function's lines) for BM25 only, dense only, and hybrid; query latency p50/p99 for each.
Nothing is tuned on this set at run time, and this script asserts nothing.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import platform
import random
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from seekgate.context.service import ContextService
from seekgate.settings import ContextSettings

DEFAULT_PACKAGES = "aiohttp,jinja2,openpyxl,jsonschema,click,requests,urllib3"
MODES = ("bm25", "dense", "hybrid")


@dataclass(frozen=True)
class Case:
    query: str
    path: str
    start: int
    end: int


def _summary(doc: str) -> str:
    """The docstring's first sentence (or first paragraph, if shorter)."""
    para = doc.strip().split("\n\n")[0].replace("\n", " ")
    sentence = para.split(". ")[0].strip().rstrip(".")
    return " ".join(sentence.split())


def strip_docstrings(source: str, rel: str) -> tuple[str, list[Case]]:
    """Blank every docstring (keeping line numbers); a case per documented function."""
    tree = ast.parse(source)
    lines = source.split("\n")
    cases = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module):
            continue
        body = node.body
        if not (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            continue
        doc = body[0]
        query = _summary(doc.value.value)  # type: ignore[attr-defined]
        first, last = doc.lineno - 1, (doc.end_lineno or doc.lineno) - 1
        indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
        for i in range(first, last + 1):
            lines[i] = ""
        if len(body) == 1:
            lines[first] = indent + "..."  # keep the body valid
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and len(query) >= 25 and len(query.split()) >= 4:
            start = min([d.lineno for d in node.decorator_list] + [node.lineno])
            cases.append(Case(query, rel, start, node.end_lineno or node.lineno))
    return "\n".join(lines), cases


def build_corpus(packages: list[str], into: Path) -> list[Case]:
    cases: list[Case] = []
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(f"package {name} is not installed here")
        src = Path(list(spec.submodule_search_locations)[0])
        for file in sorted(src.rglob("*.py")):
            rel = f"{name}/{file.relative_to(src).as_posix()}"
            try:
                stripped, found = strip_docstrings(file.read_text(encoding="utf-8"), rel)
            except (SyntaxError, UnicodeDecodeError):
                continue
            target = into / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(stripped, encoding="utf-8")
            cases += found
    return cases


def _overlaps(case: Case, path: str, start: int, end: int) -> bool:
    if path != case.path:
        return False
    shared = min(end, case.end) - max(start, case.start) + 1
    return shared >= max(1, (case.end - case.start + 1) / 2)


def _metrics(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks)
    out = {f"R@{k}": sum(1 for r in ranks if r is not None and r < k) / n for k in (1, 5, 10)}
    out["MRR"] = sum(1 / (r + 1) for r in ranks if r is not None) / n
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", default=DEFAULT_PACKAGES)
    parser.add_argument("--queries", type=int, default=400, help="cases sampled (seeded) from all documented functions")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-url", default=os.environ.get("SEEKGATE_POSTGRES_URL"))
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        cases = build_corpus(args.packages.split(","), corpus)
        lines = sum(p.read_text().count("\n") + 1 for p in corpus.rglob("*.py"))
        files = sum(1 for _ in corpus.rglob("*.py"))
        print(f"corpus: {args.packages} -- {files} files, {lines} lines, {len(cases)} documented functions")
        settings = ContextSettings(store=args.store, postgres_url=args.postgres_url)
        service = ContextService(settings, Path(tmp) / "data")
        started = time.perf_counter()
        _ = service.embedder  # loading the embedder is part of a first run
        loaded = time.perf_counter() - started
        report = service.indexer().index(corpus, "bench")
        took = time.perf_counter() - started
        print(f"index: {report.chunks} chunks in {took:.1f} s (embedder load {loaded:.2f} s): "
              f"{files / took:.0f} files/s, {lines / took:.0f} lines/s")  # fmt: skip
        again = time.perf_counter()
        service.indexer().index(corpus, "bench")
        print(f"re-index, nothing changed: {time.perf_counter() - again:.2f} s")
        random.Random(7).shuffle(cases)
        sample = cases[: args.queries]
        retriever = service.retriever()
        print(f"queries: {len(sample)}; file level = a result in the gold file; chunk level = a result covering half the gold function")
        print(f"{'mode':<7} {'level':<6} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR':>6}   {'p50 ms':>7} {'p99 ms':>7}")
        for mode in MODES:
            file_ranks: list[int | None] = []
            chunk_ranks: list[int | None] = []
            times = []
            for case in sample:
                t = time.perf_counter()
                hits = retriever.search("bench", None, case.query, 10, "code", mode)
                times.append((time.perf_counter() - t) * 1000)
                seen_files: list[str] = []
                for h in hits:
                    if h.chunk.path not in seen_files:
                        seen_files.append(h.chunk.path)
                file_ranks.append(seen_files.index(case.path) if case.path in seen_files else None)
                chunk_ranks.append(next((r for r, h in enumerate(hits) if _overlaps(case, h.chunk.path, h.chunk.start_line, h.chunk.end_line)), None))
            p50 = statistics.median(times)
            p99 = sorted(times)[min(len(times) - 1, int(len(times) * 0.99))]
            for level, ranks in (("file", file_ranks), ("chunk", chunk_ranks)):
                m = _metrics(ranks)
                print(f"{mode:<7} {level:<6} {m['R@1']:>6.3f} {m['R@5']:>6.3f} {m['R@10']:>6.3f} {m['MRR']:>6.3f}   {p50:>7.1f} {p99:>7.1f}")
        service.close()
        shutil.rmtree(corpus, ignore_errors=True)


if __name__ == "__main__":
    main()
