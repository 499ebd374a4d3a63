"""Code by syntax tree (tree-sitter): functions, methods and classes become chunks.

A class longer than `class_split_lines` becomes its signature (the header down to its first
method: docstring, fields) plus one chunk per method, each with `parent` = the class. Leading
comments, doc comments and decorators belong to their definition. Code outside definitions
(imports, constants, top-level statements, fields between methods) is kept in chunks of its
own, so every line of a file is in some chunk; a definition longer than `max_chunk_lines` is
cut into windows that keep its symbol.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import tree_sitter as ts

from seekgate.context.chunking.windows import ChunkOptions, windows
from seekgate.context.types import Chunk

__all__ = ["LANGUAGES", "chunk_code"]


@dataclass(frozen=True)
class _Grammar:
    load: Callable[[], object]
    functions: frozenset[str]
    classes: frozenset[str]
    """Definitions whose body holds methods (classes, structs, interfaces, traits, impl blocks)."""
    containers: frozenset[str] = frozenset()
    """Scopes to look inside without making a chunk of their own (namespaces, modules)."""
    wrappers: frozenset[str] = frozenset()
    """Nodes that wrap one definition and belong to it (decorators, export, template<>)."""


def _lang(module: str, attr: str = "language") -> Callable[[], object]:
    def load() -> object:
        return getattr(__import__(module), attr)()

    return load


_JS_FUNCS = frozenset({"function_declaration", "generator_function_declaration", "method_definition", "function_signature"})
_JS_CLASSES = frozenset({"class_declaration", "abstract_class_declaration", "interface_declaration", "enum_declaration", "class"})
_C_FUNCS = frozenset({"function_definition"})

GRAMMARS: dict[str, _Grammar] = {
    "python": _Grammar(_lang("tree_sitter_python"), frozenset({"function_definition"}), frozenset({"class_definition"}),
                       wrappers=frozenset({"decorated_definition"})),
    "javascript": _Grammar(_lang("tree_sitter_javascript"), _JS_FUNCS, _JS_CLASSES, wrappers=frozenset({"export_statement"})),
    "typescript": _Grammar(_lang("tree_sitter_typescript", "language_typescript"), _JS_FUNCS, _JS_CLASSES,
                           containers=frozenset({"internal_module", "module"}), wrappers=frozenset({"export_statement", "ambient_declaration"})),
    "tsx": _Grammar(_lang("tree_sitter_typescript", "language_tsx"), _JS_FUNCS, _JS_CLASSES,
                    containers=frozenset({"internal_module", "module"}), wrappers=frozenset({"export_statement", "ambient_declaration"})),
    "go": _Grammar(_lang("tree_sitter_go"), frozenset({"function_declaration", "method_declaration"}), frozenset({"type_declaration"})),
    "rust": _Grammar(_lang("tree_sitter_rust"), frozenset({"function_item", "function_signature_item", "macro_definition"}),
                     frozenset({"impl_item", "trait_item", "struct_item", "enum_item", "union_item"}), containers=frozenset({"mod_item"})),
    "java": _Grammar(_lang("tree_sitter_java"), frozenset({"method_declaration", "constructor_declaration", "compact_constructor_declaration"}),
                     frozenset({"class_declaration", "interface_declaration", "enum_declaration", "record_declaration", "annotation_type_declaration"})),
    "c": _Grammar(_lang("tree_sitter_c"), _C_FUNCS, frozenset({"struct_specifier", "union_specifier", "enum_specifier"}),
                  wrappers=frozenset({"declaration", "type_definition"})),
    "cpp": _Grammar(_lang("tree_sitter_cpp"), _C_FUNCS, frozenset({"class_specifier", "struct_specifier", "union_specifier", "enum_specifier"}),
                    containers=frozenset({"namespace_definition", "linkage_specification"}),
                    wrappers=frozenset({"template_declaration", "declaration", "type_definition"})),
}  # fmt: skip
LANGUAGES = frozenset(GRAMMARS)

_parsers = threading.local()


def _parser(language: str) -> ts.Parser:
    cache = getattr(_parsers, "by_language", None)
    if cache is None:
        cache = _parsers.by_language = {}
    if language not in cache:
        cache[language] = ts.Parser(ts.Language(GRAMMARS[language].load()))
    return cache[language]


@dataclass
class _Def:
    start: int  # 0-based rows, inclusive
    end: int
    symbol: str
    parent: str = ""
    scope_end: int = -1
    """For the signature of a split class: the class's last row (loose lines up to it are its)."""


def chunk_code(path: str, language: str, text: str, options: ChunkOptions) -> list[Chunk]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        return []
    tree = _parser(language).parse(text.encode())
    grammar = GRAMMARS[language]
    defs = list(_definitions(tree.root_node, grammar, "", options, text.encode()))
    chunks: list[Chunk] = []
    covered = [False] * len(lines)
    for d in defs:
        end = min(d.end, len(lines) - 1)
        for i in range(d.start, end + 1):
            covered[i] = True
        chunks += _emit(path, language, lines, d.start, end, d.symbol, d.parent, options)
    # Whatever no definition holds: imports, constants, statements, fields between methods.
    row = 0
    while row < len(lines):
        if covered[row] or not lines[row].strip():
            row += 1
            continue
        start = row
        while row < len(lines) and not covered[row]:
            row += 1
        end = row - 1
        while end > start and not lines[end].strip():
            end -= 1
        chunks += _emit(path, language, lines, start, end, _enclosing(defs, start), "", options)
    chunks.sort(key=lambda c: (c.start_line, c.end_line))
    return chunks


def _enclosing(defs: list[_Def], row: int) -> str:
    """The split class a stretch of loose lines sits in (fields between methods), else ""."""
    around = [d for d in defs if d.start <= row <= d.scope_end]
    return max(around, key=lambda d: d.start).symbol if around else ""


def _emit(path: str, language: str, lines: list[str], start: int, end: int, symbol: str, parent: str, options: ChunkOptions) -> list[Chunk]:
    if end - start + 1 <= options.max_chunk_lines:
        return [Chunk(path, language, "code", start + 1, end + 1, symbol, "\n".join(lines[start : end + 1]), parent)]
    return [
        Chunk(path, language, "code", start + a + 1, start + b, symbol, "\n".join(lines[start + a : start + b]), parent)
        for a, b in windows(end - start + 1, options.window_lines, options.window_overlap)
    ]


def _definitions(node: ts.Node, grammar: _Grammar, scope: str, options: ChunkOptions, source: bytes) -> Iterator[_Def]:
    for child in node.named_children:
        outer, inner = child, _unwrap(child, grammar)
        kind = inner.type
        if kind in grammar.containers:
            name = _name(inner, source)
            body = inner.child_by_field_name("body") or inner
            yield from _definitions(body, grammar, _join(scope, name), options, source)
        elif kind in grammar.classes or _is_js_class_value(inner):
            yield from _class(outer, inner, grammar, scope, options, source)
        elif kind in grammar.functions or _is_js_function_value(inner):
            start = _with_comments(outer)
            yield _Def(start, outer.end_point.row, _join(scope, _name(inner, source)), parent=scope)
        elif kind in ("expression_statement",) and inner.named_children and inner.named_children[0].type == "class":
            yield from _class(outer, inner.named_children[0], grammar, scope, options, source)


def _class(outer: ts.Node, inner: ts.Node, grammar: _Grammar, scope: str, options: ChunkOptions, source: bytes) -> Iterator[_Def]:
    symbol = _join(scope, _name(inner, source))
    start, end = _with_comments(outer), outer.end_point.row
    body = _class_body(inner)
    methods = list(_definitions(body, grammar, symbol, options, source)) if body is not None else []
    if end - start + 1 <= options.class_split_lines or not methods:
        yield _Def(start, end, symbol, parent=scope)
        return
    first = min(m.start for m in methods)
    yield _Def(start, max(start, first - 1), symbol, parent=scope, scope_end=end)  # the signature: header, docstring, fields
    for m in methods:
        yield _Def(m.start, m.end, m.symbol, parent=m.parent or symbol)


def _class_body(node: ts.Node) -> ts.Node | None:
    body = node.child_by_field_name("body")
    if body is not None:
        return body
    if node.type == "type_declaration":  # Go: type X struct {...} / interface {...}
        return None
    for child in node.named_children:
        if child.type in ("class_body", "declaration_list", "field_declaration_list", "interface_body", "enum_body"):
            return child
    return None


def _unwrap(node: ts.Node, grammar: _Grammar) -> ts.Node:
    """The definition inside a decorator, export, template or declaration wrapper."""
    while node.type in grammar.wrappers:
        inner = node.child_by_field_name("definition") or node.child_by_field_name("declaration")
        if inner is None:
            candidates = [c for c in node.named_children if c.type in grammar.functions | grammar.classes | grammar.wrappers or c.type in (
                "lexical_declaration", "variable_declaration", "class")]  # fmt: skip
            if node.type in ("declaration", "type_definition"):
                candidates = [c for c in node.named_children if c.type in grammar.classes and c.child_by_field_name("body") is not None]
            if not candidates:
                return node
            inner = candidates[0]
        node = inner
    return node


def _is_js_function_value(node: ts.Node) -> bool:
    """`const f = (...) => ...` / `const f = function ...`: a function with a name."""
    return _js_value(node) in ("arrow_function", "function_expression", "function", "generator_function")


def _is_js_class_value(node: ts.Node) -> bool:
    return _js_value(node) == "class"


def _js_value(node: ts.Node) -> str | None:
    if node.type not in ("lexical_declaration", "variable_declaration") or len(node.named_children) != 1:
        return None
    value = node.named_children[0].child_by_field_name("value")
    return value.type if value is not None else None


def _with_comments(node: ts.Node) -> int:
    """The first row of a definition, counting the comments right above it."""
    start = node.start_point.row
    prev = node.prev_named_sibling
    while prev is not None and prev.type in ("comment", "line_comment", "block_comment") and prev.end_point.row >= start - 1:
        start = prev.start_point.row
        prev = prev.prev_named_sibling
    return start


def _name(node: ts.Node, source: bytes) -> str:
    if node.type in ("lexical_declaration", "variable_declaration") and node.named_children:
        node = node.named_children[0]
    if node.type == "method_declaration" and node.child_by_field_name("receiver") is not None:  # Go
        receiver = _go_receiver(node.child_by_field_name("receiver"), source)  # type: ignore[arg-type]
        name = node.child_by_field_name("name")
        return _join(receiver, _text(name, source)) if name is not None else receiver
    if node.type == "impl_item":  # Rust: impl Trait for Type -> Type
        target = node.child_by_field_name("type")
        return _text(target, source) if target is not None else "impl"
    if node.type == "type_declaration":  # Go: type X struct
        spec = next((c for c in node.named_children if c.type in ("type_spec", "type_alias")), None)
        name = spec.child_by_field_name("name") if spec is not None else None
        return _text(name, source) if name is not None else ""
    name = node.child_by_field_name("name")
    if name is not None:
        return _text(name, source)
    declarator = node.child_by_field_name("declarator")  # C/C++: int *f(int) -> f; Foo::bar -> Foo.bar
    while declarator is not None:
        if declarator.type in ("identifier", "field_identifier", "type_identifier", "destructor_name", "operator_name"):
            return _text(declarator, source)
        if declarator.type == "qualified_identifier":
            return _text(declarator, source).replace("::", ".")
        declarator = declarator.child_by_field_name("declarator") or (declarator.named_children[0] if declarator.named_children else None)
    return ""


def _go_receiver(params: ts.Node, source: bytes) -> str:
    for p in params.named_children:
        kind = p.child_by_field_name("type")
        if kind is not None:
            return _text(kind, source).lstrip("*").split("[")[0]
    return ""


def _text(node: ts.Node, source: bytes) -> str:
    return source[node.start_byte : node.end_byte].decode(errors="replace")


def _join(scope: str, name: str) -> str:
    return f"{scope}.{name}" if scope and name else scope or name
