"""`seekgate index`, `seekgate search`, `seekgate ask`: repository context from the command line.

index and search work on the index directly (data_dir/context.db, or Postgres), no gateway
needed. ask runs the rag-code (or rag-doc) task: through a running gateway with --url, else
in this process with the configured models.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from seekgate import errors
from seekgate.cli.common import print_json_lines, print_table, settings_from_args

__all__ = ["add_parsers"]


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("index", help="index a git repository or a folder for Code-RAG and Doc-RAG (incremental)")
    p.add_argument("path", type=Path)
    p.add_argument("--name", help="the index's name (default: the folder's name)")
    p.add_argument("--commit", help="index this commit of a git repository instead of its working tree")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_index)

    p = sub.add_parser("search", help="ranked chunks for a query, from an index")
    p.add_argument("query", nargs="?", help="the query (omit with --jsonl)")
    p.add_argument("--repo", help="the index (default: context.default_repo, or the only one)")
    p.add_argument("--commit", help="an indexed commit (default: the newest)")
    p.add_argument("--top-k", type=int, help="results per query (default: context.top_k)")
    p.add_argument("--kind", choices=["code", "doc", "all"], default="all", help="code, documents, or both ranked apart and merged")
    p.add_argument("--mode", choices=["hybrid", "bm25", "dense"], default="hybrid")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the results as one JSON object")
    out.add_argument("--jsonl", action="store_true", help='read {"id", "query"} lines on stdin, write {"id", "results"} lines')
    p.set_defaults(run=run_search)

    p = sub.add_parser("ask", help="answer a question about a repository, with checked citations")
    p.add_argument("question")
    p.add_argument("--repo", help="the index (default: context.default_repo, or the only one)")
    p.add_argument("--commit", help="an indexed commit (default: the newest)")
    p.add_argument("--docs", action="store_true", help="answer from documentation (rag-doc) instead of code (rag-code)")
    p.add_argument("--model", help="a model alias (default: the task's route)")
    p.add_argument("--max-tokens", type=int, default=512)
    p.add_argument("--url", help="ask a running gateway instead of loading models here")
    p.add_argument("--json", action="store_true", help="print the answer, context and citations as JSON")
    p.set_defaults(run=run_ask)


def _service(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from seekgate.context.service import ContextService

    settings = settings_from_args(args)
    return settings, ContextService(settings.context, settings.server.data_path)


def _fail(exc: errors.SeekgateError) -> int:
    print(f"seekgate: {exc.message}", file=sys.stderr)
    return 1


def run_index(args: argparse.Namespace) -> int:
    _, service = _service(args)
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if args.quiet or total == 0:
            return
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="file", desc="indexing", file=sys.stderr, disable=None)
        bar.update(done - bar.n)

    try:
        report = service.indexer().index(args.path, args.name, args.commit, progress)
    except errors.SeekgateError as exc:
        return _fail(exc)
    finally:
        if bar is not None:
            bar.close()
        service.close()
    print(report.summary())
    return 0


def _result(hit: Any) -> dict[str, Any]:
    c = hit.chunk
    return {"path": c.path, "start_line": c.start_line, "end_line": c.end_line, "symbol": c.symbol, "score": hit.score}


def run_search(args: argparse.Namespace) -> int:
    _, service = _service(args)
    try:
        retriever = service.retriever()
        repo = args.repo or service.default_repo()
        snap = retriever.snapshot(repo, args.commit)  # once, however many queries follow
        top_k = args.top_k or service.settings.top_k
        kind = None if args.kind == "all" else args.kind

        def search(query: str) -> list[Any]:
            return retriever.search(repo, snap.commit, query, top_k, kind, args.mode)

        if args.jsonl:
            for n, line in enumerate(sys.stdin, 1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                    query = item["query"]
                except (ValueError, KeyError, TypeError):
                    print(f"seekgate: line {n} of stdin is not a JSON object with a query", file=sys.stderr)
                    return 1
                print_json_lines([{"id": item.get("id"), "results": [_result(h) for h in search(query)]}])
                sys.stdout.flush()
            return 0
        if not args.query:
            print("seekgate: give a query, or --jsonl to read queries from stdin", file=sys.stderr)
            return 2
        hits = search(args.query)
    except errors.SeekgateError as exc:
        return _fail(exc)
    finally:
        service.close()
    if args.json:
        print(json.dumps({"repo": repo, "commit": snap.commit, "query": args.query, "results": [_result(h) for h in hits]}, indent=2))
        return 0
    print(f"{repo}@{snap.commit[:12]}")
    print_table(("score", "location", "symbol"), [[f"{h.score:.4f}", f"{h.chunk.path}:{h.chunk.start_line}-{h.chunk.end_line}", h.chunk.symbol] for h in hits])
    return 0


def run_ask(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    refs = (args.repo or "") + (f"@{args.commit}" if args.commit else "")
    task = "rag-doc" if args.docs else "rag-code"
    try:
        if args.url:
            answer, context = _ask_remote(args.url, args.question, task, refs, args.model, args.max_tokens)
        else:
            answer, context = asyncio.run(_ask_here(settings, args.question, task, refs, args.model, args.max_tokens))
    except errors.SeekgateError as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps({"answer": answer, "context": context}, indent=2))
        return 0
    print(answer.strip())
    if context:
        print(f"\ncontext: {context['repo']}@{context['commit'][:12]}")
        for block in context["blocks"]:
            print(f"  {block['path']}:{block['start_line']}-{block['end_line']}  {block['symbol']}")
        for c in context.get("citations", []):
            print(f"  cited {c['ref']}: {'ok' if c['ok'] else c['problem']}")
    return 0


async def _ask_here(settings: Any, question: str, task: str, refs: str, model: str | None, max_tokens: int) -> tuple[str, dict[str, Any] | None]:
    import msgspec

    from seekgate.app import create_app
    from seekgate.core.service import Hints
    from seekgate.core.types import ChatRequest, Message, Role, Sampling, TextPart

    settings = msgspec.structs.replace(settings, server=msgspec.structs.replace(settings.server, preload_default=False))
    gateway = create_app(settings).state.gateway
    gateway.registry.build()
    try:
        request = ChatRequest(
            model=model or "", messages=(Message(role=Role.USER, content=(TextPart(question),)),), sampling=Sampling(max_tokens=max_tokens)
        )
        _, answer = await gateway.chat(request, Hints(task=task, context=refs or None))
        return answer.text, answer.context
    finally:
        await gateway.registry.aclose()
        if gateway.context is not None:
            await asyncio.to_thread(gateway.context.service.close)


def _ask_remote(url: str, question: str, task: str, refs: str, model: str | None, max_tokens: int) -> tuple[str, dict[str, Any] | None]:
    import urllib.error
    import urllib.request

    body = {"model": model or "auto", "max_tokens": max_tokens, "messages": [{"role": "user", "content": question}]}
    headers = {"Content-Type": "application/json", "X-Task-Type": task, **({"X-Context-Refs": refs} if refs else {})}
    request = urllib.request.Request(url.rstrip("/") + "/v1/chat/completions", data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=600) as resp:
            data = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = str(exc.reason)
        raise errors.SeekgateError(f"{url}: {exc.code}: {message}") from None
    except urllib.error.URLError as exc:
        raise errors.SeekgateError(f"cannot reach the gateway at {url}: {exc.reason}") from None
    return data["choices"][0]["message"]["content"] or "", (data.get("seekgate") or {}).get("context")
