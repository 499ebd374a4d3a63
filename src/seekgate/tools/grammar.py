"""JSON schema -> llama.cpp GBNF, with the fixes llama-cpp-python's converter needs.

The converter (a port of llama.cpp's) lets raw control characters into strings, which JSON
forbids, and ignores integer `minimum`/`maximum`. Strings get the strict character rule back;
a bounded integer range of up to RANGE_AS_ENUM values becomes an enum, which it does enforce.
One-sided bounds and number (float) ranges stay unenforced: the caller's verifier sees them, and
so do string and array lengths above MAX_REPEAT (llama.cpp refuses to compile a grammar that
repeats a rule more than about a thousand times; the request then fails, which is worse).
"""

from __future__ import annotations

import json
import math
from typing import Any

from llama_cpp.llama_grammar import json_schema_to_gbnf

from seekgate import errors

__all__ = ["MAX_REPEAT", "RANGE_AS_ENUM", "schema_to_gbnf", "tighten"]

RANGE_AS_ENUM = 1000
MAX_REPEAT = 1000
"""The longest maxLength / maxItems kept (measured: 1000 compiles, 1200 does not)."""
_LOOSE_CHAR = r'char ::= [^"\\] |'
_STRICT_CHAR = r'char ::= [^"\\\x7F\x00-\x1F] |'


def schema_to_gbnf(schema: dict[str, Any], *, param: str) -> str:
    try:
        rules = json_schema_to_gbnf(json.dumps(tighten(schema)))
    # The converter reports unresolvable $refs with assert, hence AssertionError here.
    except (ValueError, KeyError, TypeError, NotImplementedError, AssertionError, RecursionError) as exc:
        raise errors.InvalidRequest(f"the JSON schema cannot be enforced: {exc}", param=param) from None
    return rules.replace(_LOOSE_CHAR, _STRICT_CHAR)


def tighten(node: Any) -> Any:
    """The schema with bounded integer ranges as enums: converters that ignore minimum/maximum
    (llama-cpp-python's, some servers') all enforce enums."""
    if isinstance(node, list):
        return [tighten(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: tighten(v) for k, v in node.items()}
    for key, low in (("maxLength", "minLength"), ("maxItems", "minItems")):
        if isinstance(out.get(key), int) and out[key] > MAX_REPEAT:
            del out[key]
            if isinstance(out.get(low), int) and out[low] > MAX_REPEAT:
                del out[low]
    if out.get("type") == "integer":
        lo = _bound(out, "minimum", "exclusiveMinimum", +1)
        hi = _bound(out, "maximum", "exclusiveMaximum", -1)
        if lo is not None and hi is not None and 0 <= hi - lo < RANGE_AS_ENUM:
            keep = {k: v for k, v in out.items() if k in ("description", "title", "default")}
            return {**keep, "enum": list(range(lo, hi + 1))}
    return out


def _bound(node: dict[str, Any], inclusive: str, exclusive: str, step: int) -> int | None:
    if isinstance(node.get(exclusive), int | float) and not isinstance(node.get(exclusive), bool):
        value = node[exclusive]
        return int(math.floor(value)) + 1 if step > 0 else int(math.ceil(value)) - 1
    if isinstance(node.get(inclusive), int | float) and not isinstance(node.get(inclusive), bool):
        value = node[inclusive]
        return int(math.ceil(value)) if step > 0 else int(math.floor(value))
    return None
