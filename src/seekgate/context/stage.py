"""The gateway's context stage: retrieve at repo@commit, inject cited blocks, check the citations.

A request gets context when its task profile names a retrieval recipe ("code" or "docs") or
when it carries `X-Context-Refs: REPO[@COMMIT][,PATH...]`: the repository and commit to
retrieve from (default: context.default_repo, or the only index; its newest commit) and files
to include whole. The blocks go in as one system message after the prompt pack, each headed
`path:start-end @commit`. After the answer every `path:line` / `path:start-end` in it is
checked against that snapshot.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from seekgate import errors
from seekgate.context.citations import Citation, check_citations
from seekgate.context.service import ContextService
from seekgate.context.types import Hit, Kind
from seekgate.core.types import ChatRequest, Message, Role, TextPart

__all__ = ["ContextRefs", "ContextStage", "UsedContext", "parse_refs"]

RECIPES: dict[str, Kind | None] = {"code": "code", "docs": "doc", "doc": "doc", "all": None}
_MAX_NAMED_FILES = 8


class ContextRefs(msgspec.Struct, frozen=True):
    repo: str | None = None
    commit: str | None = None
    paths: tuple[str, ...] = ()


def parse_refs(header: str | None) -> ContextRefs | None:
    """`repo@sha,path1,path2`; an empty first item means the default repository."""
    if header is None or not header.strip():
        return None
    first, *paths = [p.strip() for p in header.split(",")]
    repo, _, commit = first.partition("@")
    clean = tuple(p.removeprefix("./") for p in paths if p)
    if len(clean) > _MAX_NAMED_FILES:
        raise errors.InvalidRequest(f"X-Context-Refs names {len(clean)} files; at most {_MAX_NAMED_FILES}", param="X-Context-Refs")
    return ContextRefs(repo=repo or None, commit=commit or None, paths=clean)


@dataclass
class UsedContext:
    repo: str
    commit: str
    blocks: list[Hit]
    lines: dict[str, int | None] = field(default_factory=dict)
    """Line counts of the snapshot's files, looked up as citations name them."""
    citations: list[Citation] | None = None
    note: str = ""
    """Why there is no context, when there is none."""

    def header(self) -> str:
        if self.note:
            return _latin1(self.note)
        refs = ", ".join(f"{h.chunk.path}:{h.chunk.start_line}-{h.chunk.end_line}" for h in self.blocks)
        return _latin1(f"{self.repo}@{self.commit[:12]}: {refs}")

    def citations_header(self) -> str | None:
        if self.citations is None or self.note:
            return None
        bad = [c for c in self.citations if c.problem]
        text = f"{len(self.citations)} checked, {len(bad)} flagged"
        if bad:
            text += ": " + "; ".join(f"{c.ref} ({c.problem})" for c in bad[:10])
        return _latin1(text)

    def metadata(self) -> dict[str, object]:
        out: dict[str, object] = {
            "repo": self.repo,
            "commit": self.commit,
            "blocks": [{"path": h.chunk.path, "start_line": h.chunk.start_line, "end_line": h.chunk.end_line,
                        "symbol": h.chunk.symbol, "score": h.score} for h in self.blocks],  # fmt: skip
        }
        if self.citations is not None:
            out["citations"] = [{"ref": c.ref, "path": c.path, "start": c.start, "end": c.end, "ok": not c.problem,
                                 **({"problem": c.problem} if c.problem else {})} for c in self.citations]  # fmt: skip
        return out


class ContextStage:
    def __init__(self, service: ContextService) -> None:
        self.service = service
        self.stats: Counter[str] = Counter()
        self._lock = threading.Lock()

    async def attach(self, request: ChatRequest, recipe: str, refs: ContextRefs | None) -> tuple[ChatRequest, UsedContext | None]:
        if not recipe and refs is None:
            return request, None
        if recipe not in RECIPES and recipe:
            raise errors.InvalidRequest(f"unknown retrieval recipe {recipe!r}; known: {', '.join(RECIPES)}")
        if refs is None:
            # The task asks for context but the request names no index: use the default one if
            # there is one; if not, answer without context and say why (the task may have been
            # inferred; that is no reason to fail the request).
            try:
                await asyncio.to_thread(self.service.default_repo)
            except errors.InvalidRequest as exc:
                return request, UsedContext("", "", [], note=f"none: {exc.message}")
        used = await asyncio.to_thread(self._retrieve, request, RECIPES[recipe] if recipe else None, refs or ContextRefs())
        with self._lock:
            self.stats["retrievals"] += 1
        block = Message(role=Role.SYSTEM, content=(TextPart(render(used)),))
        lead = next((i for i, m in enumerate(request.messages) if m.role is not Role.SYSTEM), len(request.messages))
        messages = (*request.messages[:lead], block, *request.messages[lead:])
        return msgspec.structs.replace(request, messages=messages), used

    def _retrieve(self, request: ChatRequest, kind: Kind | None, refs: ContextRefs) -> UsedContext:
        service = self.service
        repo = refs.repo or service.default_repo()
        retriever = service.retriever()
        try:
            snap = retriever.snapshot(repo, refs.commit)
        except errors.NotFound:
            if not (refs.commit and service.settings.index_on_demand):
                raise
            snap = self._index_on_demand(repo, refs.commit)
        query = next((m.text for m in reversed(request.messages) if m.role is Role.USER and m.text.strip()), "")
        hits = retriever.search(repo, snap.commit, query, service.settings.top_k, kind) if query else []
        named: list[Hit] = []
        for path in refs.paths:
            chunks = service.store.file_chunks(repo, snap.commit, path)
            if not chunks:
                raise errors.NotFound(f"{repo}@{snap.commit[:12]} has no file {path!r}", param="X-Context-Refs")
            named += [Hit(chunk=s.chunk, score=0.0, commit=snap.commit, id=s.id) for s in chunks]
        seen = {h.id for h in named}
        return UsedContext(repo, snap.commit, named + [h for h in hits if h.id not in seen])

    def _index_on_demand(self, repo: str, commit: str):  # type: ignore[no-untyped-def]
        roots = [s.root for s in self.service.store.snapshots(repo) if s.root]
        if not roots:
            raise errors.NotFound(f"{repo} is not indexed, so there is no checkout to index commit {commit!r} from")
        self.service.indexer().index(Path(roots[0]), repo, commit)
        return self.service.retriever().snapshot(repo, commit)

    async def check(self, used: UsedContext, text: str) -> list[Citation]:
        """Check the answer's citations against the snapshot (file lookups off the loop)."""
        store = self.service.store

        def lines_of(path: str) -> int | None:
            if path not in used.lines:
                used.lines[path] = store.file_lines(used.repo, used.commit, path)
            return used.lines[path]

        citations = await asyncio.to_thread(check_citations, text, lines_of)
        with self._lock:
            self.stats["citations_checked"] += len(citations)
            self.stats["citations_flagged"] += sum(1 for c in citations if c.problem)
        used.citations = citations
        return citations


def render(used: UsedContext) -> str:
    """The context message: one block per chunk, headed path:start-end @commit."""
    short = used.commit[:12]
    parts = [f"Context from repository {used.repo} at commit {short}. Cite it as path:line or path:start-end."]
    for hit in used.blocks:
        c = hit.chunk
        fence = "```" + ("" if c.kind == "doc" else c.language)
        title = f" ({c.symbol})" if c.symbol else ""
        parts.append(f"### {c.path}:{c.start_line}-{c.end_line} @{short}{title}\n{fence}\n{c.text.rstrip()}\n```")
    if not used.blocks:
        parts.append("(nothing in the index matched this question)")
    return "\n\n".join(parts)


def _latin1(text: str) -> str:
    return text.encode("latin-1", errors="backslashreplace").decode("latin-1")
