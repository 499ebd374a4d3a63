"""Chunk boundaries per language, every line covered, documents along their headings."""

import io
from pathlib import Path

import pytest

from seekgate.context.chunking import ChunkOptions, chunk_file, kind_of, language_of

SAMPLES = Path(__file__).parents[2] / "fixtures" / "context"


def _chunks(name: str, **options: int) -> list[tuple[int, int, str, str]]:
    return [(c.start_line, c.end_line, c.symbol, c.parent) for c in chunk_file(name, (SAMPLES / name).read_bytes(), ChunkOptions(**options))]


@pytest.mark.parametrize(
    "name,expected",
    [
        # Decorator and the comment above belong to the function; module code is its own chunk.
        ("sample.py", [(1, 5, "", ""), (8, 12, "top_level", ""), (15, 19, "Small", "")]),
        ("sample.go", [(1, 3, "", ""), (5, 8, "Circle", ""), (10, 13, "Circle.Area", ""), (15, 17, "Unit", "")]),
        ("sample.rs", [(1, 1, "", ""), (3, 6, "Point", ""), (8, 12, "Point", ""), (14, 16, "helper", "")]),
        ("sample.ts", [(1, 1, "", ""), (3, 5, "Shape", ""), (7, 12, "Square", ""), (14, 14, "double", ""), (16, 16, "plain", "")]),
        ("sample.js", [(1, 1, "", ""), (3, 5, "readConfig", ""), (7, 11, "Loader", ""), (13, 13, "", "")]),
        ("sample.java", [(1, 1, "", ""), (3, 14, "Greeter", "")]),
        ("sample.c", [(1, 1, "", ""), (3, 6, "pair", ""), (8, 10, "sum", "")]),
        ("sample.cpp", [(1, 3, "", ""), (4, 9, "app.Store", "app"), (10, 10, "", ""), (12, 14, "app_main", "")]),
    ],
)  # fmt: skip
def test_definitions_per_language(name, expected):
    assert _chunks(name) == expected


def test_a_large_class_becomes_its_signature_and_its_methods():
    chunks = chunk_file("big_class.py", (SAMPLES / "big_class.py").read_bytes(), ChunkOptions())
    assert (chunks[0].start_line, chunks[0].end_line, chunks[0].symbol) == (1, 5, "Big")
    assert "field = 1" in chunks[0].text and "def m0" not in chunks[0].text
    methods = chunks[1:]
    assert [c.symbol for c in methods] == [f"Big.m{i}" for i in range(30)]
    assert {c.parent for c in methods} == {"Big"}
    assert (methods[0].start_line, methods[0].end_line) == (6, 9)
    # Small classes stay whole.
    assert len(chunk_file("big_class.py", (SAMPLES / "big_class.py").read_bytes(), ChunkOptions(class_split_lines=1000))) == 1


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.iterdir() if language_of(p.name) not in ("markdown", "rst", "html")))
def test_every_non_blank_line_of_code_is_in_a_chunk(name):
    lines = (SAMPLES / name).read_text().split("\n")
    chunks = chunk_file(name, (SAMPLES / name).read_bytes(), ChunkOptions())
    covered = {n for c in chunks for n in range(c.start_line, c.end_line + 1)}
    assert {i + 1 for i, line in enumerate(lines) if line.strip()} <= covered
    for c in chunks:  # each chunk's text is exactly its lines
        assert c.text == "\n".join(lines[c.start_line - 1 : c.end_line]) and c.kind == "code"


def test_long_definitions_and_unknown_text_fall_back_to_overlapping_windows():
    body = "\n".join(f"    x{i} = {i}" for i in range(700))
    chunks = chunk_file("long.py", f"def huge():\n{body}\n".encode(), ChunkOptions(window_lines=200, window_overlap=20, max_chunk_lines=300))
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, 200), (181, 380), (361, 560), (502, 701)]
    assert {c.symbol for c in chunks} == {"huge"}
    conf = chunk_file("settings.toml", b"\n".join(b"k%d = %d" % (i, i) for i in range(250)) + b"\n", ChunkOptions())
    assert [(c.start_line, c.end_line, c.language) for c in conf] == [(1, 200, "toml"), (51, 250, "toml")]


def test_markdown_splits_along_headings_and_ignores_hashes_in_code():
    chunks = chunk_file("guide.md", (SAMPLES / "guide.md").read_bytes(), ChunkOptions(doc_chunk_tokens=8))
    assert [(c.start_line, c.end_line, c.symbol) for c in chunks] == [
        (1, 3, "Guide"), (5, 7, "Guide > Install"), (9, 12, "Guide > Install"),
        (14, 16, "Guide > Install > From source"), (18, 21, "Setext Title"),
    ]  # fmt: skip
    assert all(c.kind == "doc" and c.language == "markdown" for c in chunks)
    # At the default size the whole small guide is one chunk under its first heading.
    assert [(c.start_line, c.end_line, c.symbol) for c in chunk_file("guide.md", (SAMPLES / "guide.md").read_bytes(), ChunkOptions())] == [(1, 21, "Guide")]


def test_restructuredtext_and_html_headings():
    rst = chunk_file("guide.rst", (SAMPLES / "guide.rst").read_bytes(), ChunkOptions(doc_chunk_tokens=8))
    assert [(c.start_line, c.end_line, c.symbol) for c in rst] == [(1, 5, "Title"), (7, 10, "Title > Usage"), (12, 15, "Title > Usage > Details")]
    html = chunk_file("page.html", (SAMPLES / "page.html").read_bytes(), ChunkOptions(doc_chunk_tokens=8))
    assert [(c.start_line, c.end_line, c.symbol, c.text) for c in html] == [
        (3, 4, "Manual", "Manual\n\nFirst paragraph."), (6, 8, "Manual > Setup", "Setup\n\nSecond paragraph."),
    ]  # fmt: skip
    assert "hidden" not in " ".join(c.text for c in html) and "color" not in " ".join(c.text for c in html)


def test_doc_chunks_stay_near_their_target_size():
    sections = "\n\n".join(f"## Part {i}\n\n" + " ".join(f"word{j}" for j in range(150)) for i in range(30))
    chunks = chunk_file("long.md", f"# Book\n\n{sections}\n".encode(), ChunkOptions(doc_chunk_tokens=1000))
    sizes = [len(c.text) / 4 for c in chunks]
    assert len(chunks) > 3 and all(s <= 1200 for s in sizes) and all(s >= 800 for s in sizes[:-1])
    assert chunks[1].symbol.startswith("Book > Part")


def test_pdf_text_is_chunked_by_page():
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    for page_text in ("Installing the gateway", "Configuring the routes"):
        page = writer.add_blank_page(width=300, height=200)
        stream = DecodedStreamObject()
        stream.set_data(f"BT /F1 12 Tf 20 100 Td ({page_text}) Tj ET".encode())
        font = DictionaryObject({NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
                                 NameObject("/BaseFont"): NameObject("/Helvetica")})  # fmt: skip
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
        page[NameObject("/Contents")] = writer._add_object(stream)
    buf = io.BytesIO()
    writer.write(buf)
    chunks = chunk_file("manual.pdf", buf.getvalue(), ChunkOptions(doc_chunk_tokens=4))
    assert [(c.symbol, c.text) for c in chunks] == [("p. 1", "Installing the gateway"), ("p. 2", "Configuring the routes")]
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, 1), (2, 2)]
    assert chunk_file("broken.pdf", b"%PDF-1.4 not really", ChunkOptions()) == []


def test_languages_and_kinds():
    assert [language_of(p) for p in ("a.py", "b.tsx", "c.h", "d.hpp", "README", "notes.txt", "x.yaml", "Makefile")] == [
        "python", "tsx", "c", "cpp", "text", "text", "yaml", "text"]  # fmt: skip
    assert kind_of("markdown") == "doc" and kind_of("python") == "code" and kind_of("yaml") == "code"
