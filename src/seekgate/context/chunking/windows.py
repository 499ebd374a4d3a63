"""Options shared by every chunker, and windows of lines for text no chunker understands."""

from __future__ import annotations

from dataclasses import dataclass

from seekgate.context.types import Chunk

__all__ = ["ChunkOptions", "chunk_windows", "windows"]


@dataclass(frozen=True)
class ChunkOptions:
    window_lines: int = 200
    window_overlap: int = 20
    doc_chunk_tokens: int = 1000
    class_split_lines: int = 120
    """A class longer than this becomes its signature plus one chunk per method."""
    max_chunk_lines: int = 300
    """A definition longer than this is cut into windows."""


def windows(n: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) ranges of `size` lines over `n`, each overlapping the last by `overlap`;
    the last window is pulled back to end at n, so none is a sliver."""
    if n <= size:
        return [(0, n)]
    step = max(1, size - overlap)
    out = []
    start = 0
    while start + size < n:
        out.append((start, start + size))
        start += step
    out.append((max(0, n - size), n))
    return out


def chunk_windows(path: str, language: str, text: str, options: ChunkOptions, kind: str = "code") -> list[Chunk]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not any(line.strip() for line in lines):
        return []
    return [
        Chunk(path, language, kind, a + 1, b, "", "\n".join(lines[a:b]))  # type: ignore[arg-type]
        for a, b in windows(len(lines), options.window_lines, options.window_overlap)
    ]
