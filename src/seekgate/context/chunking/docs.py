"""Documents along their headings: Markdown, reStructuredText, HTML, PDF and plain text.

Each document becomes paragraphs under heading paths; paragraphs are packed into chunks of
about `doc_chunk_tokens` tokens (at most 1.2 times that, unless one paragraph is bigger):
small sections under the same top heading are merged, a big section is cut at paragraph
boundaries, and a chunk starts afresh at a new top-level heading once it has some substance.
`symbol` is the heading path of the chunk's first paragraph ("Install > From source").
Tokens are estimated at four characters each: a chunk size, not a model's count.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from html.parser import HTMLParser

from seekgate.context.chunking.windows import ChunkOptions
from seekgate.context.types import Chunk

__all__ = ["DOC_LANGUAGES", "chunk_doc"]

DOC_LANGUAGES = frozenset({"markdown", "rst", "html", "pdf", "text"})


@dataclass
class _Para:
    heading: tuple[str, ...]
    first: int  # 1-based lines, inclusive
    last: int
    text: str
    is_heading: bool = False


def tokens(text: str) -> int:
    return (len(text) + 3) // 4


def chunk_doc(path: str, language: str, content: str | bytes, options: ChunkOptions) -> list[Chunk]:
    if language == "pdf":
        paras = _pdf(content if isinstance(content, bytes) else content.encode())
    else:
        text = content.decode("utf-8", errors="replace") if isinstance(content, bytes) else content
        paras = {"markdown": _markdown, "rst": _rst, "html": _html}.get(language, _plain)(text)
    return _pack(path, language, [p for p in paras if p.text.strip()], options.doc_chunk_tokens, by_heading=language != "pdf")


def _pack(path: str, language: str, paras: list[_Para], target: int, *, by_heading: bool) -> list[Chunk]:
    most = int(target * 1.2)
    chunks: list[Chunk] = []
    group: list[_Para] = []
    size = 0

    def flush() -> None:
        nonlocal group, size
        if group:
            text = "\n\n".join(p.text.strip("\n") for p in group)
            chunks.append(Chunk(path, language, "doc", group[0].first, group[-1].last, " > ".join(group[0].heading), text))
        group, size = [], 0

    for para in paras:
        n = tokens(para.text)
        new_section = bool(group) and para.heading != group[-1].heading
        new_top = bool(group) and by_heading and para.heading[:1] != group[0].heading[:1]
        if group and (size + n > most or (new_section and size >= target * 0.8) or (new_top and size >= target * 0.25)):
            flush()
        group.append(para)
        size += n
    flush()
    return chunks


def _split_paragraphs(lines: list[str], start: int, end: int, heading: tuple[str, ...]) -> list[_Para]:
    """Blank-line separated paragraphs of lines[start:end] (0-based), as 1-based ranges."""
    out: list[_Para] = []
    i = start
    while i < end:
        if not lines[i].strip():
            i += 1
            continue
        j = i
        while j < end and lines[j].strip():
            j += 1
        out.append(_Para(heading, i + 1, j, "\n".join(lines[i:j])))
        i = j
    return out


def _sections(lines: list[str], heads: list[tuple[int, int, str, int]]) -> list[_Para]:
    """Paragraphs under heading paths, from headings (first row, level, title, rows it spans)."""
    out: list[_Para] = _split_paragraphs(lines, 0, heads[0][0] if heads else len(lines), ())
    stack: list[tuple[int, str]] = []
    for n, (row, level, title, span) in enumerate(heads):
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        path = tuple(t for _, t in stack)
        end = heads[n + 1][0] if n + 1 < len(heads) else len(lines)
        body = _split_paragraphs(lines, row + span, end, path)
        heading_text = "\n".join(lines[row : row + span])
        if body:  # a heading always travels with the paragraph after it
            body[0] = _Para(path, row + 1, body[0].last, heading_text + "\n\n" + body[0].text)
        else:
            body.insert(0, _Para(path, row + 1, row + span, heading_text))
        out += body
    return out


_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def _markdown(text: str) -> list[_Para]:
    lines = text.split("\n")
    heads: list[tuple[int, int, str, int]] = []
    fence: str | None = None
    for i, line in enumerate(lines):
        m = _FENCE.match(line)
        if m:
            if fence is None:
                fence = m.group(1)[0] * 3
            elif m.group(1).startswith(fence):
                fence = None
            continue
        if fence is not None:
            continue
        if (h := _ATX.match(line)) is not None:
            heads.append((i, len(h.group(1)), (h.group(2) or "").strip(), 1))
        elif (
            i + 1 < len(lines) and line.strip() and not line.startswith((" " * 4, "\t")) and _SETEXT.match(lines[i + 1])
            and not re.match(r"^\s*([-*+>]|\d+\.)\s", line) and (not heads or heads[-1][0] + heads[-1][3] <= i)
        ):  # fmt: skip
            heads.append((i, 1 if lines[i + 1].strip()[0] == "=" else 2, line.strip(), 2))
    return _sections(lines, heads)


_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+<>:._])\1{2,}\s*$")


def _rst(text: str) -> list[_Para]:
    lines = text.split("\n")
    heads: list[tuple[int, int, str, int]] = []
    styles: list[tuple[str, bool]] = []
    i = 0
    while i + 1 < len(lines):
        over = _RST_UNDERLINE.match(lines[i])
        if over and i + 2 < len(lines) and lines[i + 1].strip() and _RST_UNDERLINE.match(lines[i + 2]) and lines[i + 2][0] == lines[i][0]:
            style, title, span = (lines[i][0], True), lines[i + 1].strip(), 3
        elif lines[i].strip() and not lines[i][0].isspace() and (u := _RST_UNDERLINE.match(lines[i + 1])) and len(lines[i + 1].rstrip()) >= len(lines[i].rstrip()):
            style, title, span = (u.group(1), False), lines[i].strip(), 2
        else:
            i += 1
            continue
        if style not in styles:
            styles.append(style)
        heads.append((i, styles.index(style) + 1, title, span))
        i += span
    return _sections(lines, heads)


def _plain(text: str) -> list[_Para]:
    lines = text.split("\n")
    return _split_paragraphs(lines, 0, len(lines), ())


class _HtmlText(HTMLParser):
    """Paragraphs of visible text with the source lines they came from; h1-h6 start sections."""

    BLOCKS = frozenset("p div li ul ol pre table tr td th dt dd blockquote section article header footer nav main br hr form figure".split())
    HIDDEN = frozenset({"script", "style", "noscript", "template", "head"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paras: list[_Para] = []
        self._stack: list[tuple[int, str]] = []
        self._hidden = 0
        self._heading: int | None = None
        self._title: list[str] = []
        self._current: _Para | None = None

    def _break(self) -> None:
        self._current = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self._hidden += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._heading, self._title = int(tag[1]), []
            self._break()
        elif tag in self.BLOCKS:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif re.fullmatch(r"h[1-6]", tag) and self._heading is not None:
            level, title = self._heading, " ".join("".join(self._title).split())
            while self._stack and self._stack[-1][0] >= level:
                self._stack.pop()
            self._stack.append((level, title))
            line = self.getpos()[0]
            self.paras.append(_Para(self.path, line, line, title, is_heading=True))
            self._heading = None
            self._break()
        elif tag in self.BLOCKS:
            self._break()

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(t for _, t in self._stack)

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if self._heading is not None:
            self._title.append(data)
            return
        words = " ".join(data.split())
        if not words:
            return
        line = self.getpos()[0]
        last = line + data.count("\n")
        if self._current is None:
            self._current = _Para(self.path, line, last, words)
            self.paras.append(self._current)
        else:
            self._current.text += " " + words
            self._current.last = last


def _html(text: str) -> list[_Para]:
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    out: list[_Para] = []
    for para in parser.paras:  # a heading travels with the paragraph after it
        if out and out[-1].is_heading and out[-1].heading == para.heading:
            out[-1] = _Para(para.heading, out[-1].first, para.last, out[-1].text + "\n\n" + para.text)
        else:
            out.append(para)
    return out


def _pdf(data: bytes) -> list[_Para]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, OSError):
        return []
    paras: list[_Para] = []
    offset = 0
    for number, page in enumerate(pages, 1):
        lines = page.split("\n")
        paras += _split_paragraphs_offset(lines, offset, (f"p. {number}",))
        offset += len(lines)
    return paras


def _split_paragraphs_offset(lines: list[str], offset: int, heading: tuple[str, ...]) -> list[_Para]:
    paras = _split_paragraphs(lines, 0, len(lines), heading)
    if len(paras) == 1 and len(lines) > 40:  # PDF text often has no blank lines: cut every 40 lines
        paras = [_Para(heading, a + 1, min(a + 40, len(lines)), "\n".join(lines[a : a + 40])) for a in range(0, len(lines), 40)]
    return [_Para(p.heading, p.first + offset, p.last + offset, p.text) for p in paras]
