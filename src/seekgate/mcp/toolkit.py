"""The tools a scalpel chore hands the model, per mode, and the check of a call's arguments.

    intel   read_file, list_files, search, finish      no tool can write: read-only by structure
    edit    the same, and apply_patch                  diffs or search/replace blocks, atomic

The schemas hold only what a grammar enforces (types, lengths, required keys, no others), so a
call generated under constrained decoding always passes check_arguments; calls from elsewhere
get a precise error back.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from seekgate.core.types import ToolSpec

__all__ = [
    "APPLY_PATCH",
    "FINISH",
    "FORMATS",
    "LIST_FILES",
    "MODES",
    "READ_FILE",
    "SEARCH",
    "Format",
    "InvalidCall",
    "Mode",
    "check_arguments",
    "signature",
    "system_prompt",
    "tools_for",
]

Mode = Literal["intel", "edit"]
Format = Literal["text", "json", "markdown"]
MODES: tuple[Mode, ...] = ("intel", "edit")
FORMATS: tuple[Format, ...] = ("text", "json", "markdown")


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> ToolSpec:
    schema = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
    return ToolSpec(name, description, schema)


# Only what the grammar enforces (types, lengths, required, no extra keys), so a constrained call
# always passes check_arguments; a bad line range is the workspace's to explain.
_PATH = {"type": "string", "maxLength": 300}
_TEXT = {"type": "string", "minLength": 1}
"""A patch or an answer: never empty, and not bounded, because llama.cpp refuses a grammar that
repeats a character more than about a thousand times and a real one can be longer."""
_LINE = {"type": "integer"}
READ_FILE = _tool(
    "read_file", "Read a file, or its lines start_line to end_line (1-based, inclusive).",
    {"path": _PATH, "start_line": _LINE, "end_line": _LINE}, ["path"],
)  # fmt: skip
LIST_FILES = _tool(
    "list_files", "List the files under a folder (default: the project root); pattern is a glob such as *.py.",
    {"path": _PATH, "pattern": {"type": "string", "maxLength": 100}}, [],
)  # fmt: skip
SEARCH = _tool(
    "search", "Find the lines that match a regular expression, as path:line: text; glob narrows the files.",
    {"regex": {"type": "string", "maxLength": 200}, "path": _PATH, "glob": {"type": "string", "maxLength": 100}}, ["regex"],
)  # fmt: skip
APPLY_PATCH = _tool(
    "apply_patch", "Change files with a unified diff or search/replace blocks. All or nothing: a patch that fails changes nothing.",
    {"patch": _TEXT}, ["patch"],
)  # fmt: skip
FINISH = _tool("finish", "End the chore with your answer.", {"answer": _TEXT}, ["answer"])
def tools_for(mode: Mode) -> tuple[ToolSpec, ...]:
    """The tools a mode hands the model; intel has nothing that writes."""
    if mode == "edit":
        return (READ_FILE, LIST_FILES, SEARCH, APPLY_PATCH, FINISH)
    return (READ_FILE, LIST_FILES, SEARCH, FINISH)


_FORMAT_RULE: dict[Format, str] = {
    "text": "plain text",
    "markdown": "Markdown",
    "json": "JSON text (an object or an array, nothing around it)",
}
_PATCH_HELP = """\
apply_patch takes a unified diff (--- a/PATH, +++ b/PATH, @@ hunks with a few unchanged lines of
context) or search/replace blocks, each the file's path on its own line, then:
<<<<<<< SEARCH
the exact lines now in the file
=======
the lines to put in their place
>>>>>>> REPLACE
Read a file before you change it. If a patch fails, nothing changed: read the error, fix the patch."""


def signature(spec: ToolSpec) -> str:
    required = set(spec.parameters.get("required", ()))
    names = [name if name in required else name + "?" for name in spec.parameters.get("properties", {})]
    return f"{spec.name}({', '.join(names)})"


def system_prompt(mode: Mode, fmt: Format) -> str:
    """The chore's rules. The tools themselves reach the model with the request (natively, or
    described by the tool emulation), so they are only named here."""
    names = ", ".join(t.name for t in tools_for(mode))
    lines = [
        f"You do a chore on the files of one project, with these tools: {names}.",
        "Every turn, call exactly one tool. Paths are relative to the project root.",
        "First look at the files the task is about (read_file, search, list_files); do not guess.",
        f"When you know the answer, call finish; its answer is {_FORMAT_RULE[fmt]}.",
    ]
    if mode == "edit":
        lines += ["Change files only with apply_patch, and call finish once the change is made.", _PATCH_HELP]
    else:
        lines.append("This chore is read-only: no file can be changed.")
    return "\n".join(lines)


class InvalidCall(Exception):
    """A call the loop cannot run; the message goes back to the model as the call's result."""


def check_arguments(spec: ToolSpec, arguments: str) -> dict[str, Any]:
    """The call's arguments, checked against the tool's (flat) schema; InvalidCall says what is wrong."""
    try:
        args = json.loads(arguments or "{}")
    except ValueError as exc:
        raise InvalidCall(f"the arguments of {spec.name} are not valid JSON: {exc}") from None
    if not isinstance(args, dict):
        raise InvalidCall(f"the arguments of {spec.name} must be a JSON object, not {_json_type(args)}")
    props: dict[str, Any] = spec.parameters["properties"]
    for key in args:
        if key not in props:
            raise InvalidCall(f"{spec.name} has no argument {key!r}; it is called as {signature(spec)}")
    for key in spec.parameters["required"]:
        if key not in args:
            raise InvalidCall(f"{spec.name} needs the argument {key!r}; it is called as {signature(spec)}")
    for key, value in args.items():
        rule = props[key]
        if rule["type"] == "string":
            if not isinstance(value, str):
                raise InvalidCall(f"{spec.name}: {key} must be a string, not {_json_type(value)}")
            if len(value) > rule.get("maxLength", len(value)):
                raise InvalidCall(f"{spec.name}: {key} is longer than {rule['maxLength']} characters")
            if len(value) < rule.get("minLength", 0):
                raise InvalidCall(f"{spec.name}: {key} is empty; give it text")
        elif rule["type"] == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
            raise InvalidCall(f"{spec.name}: {key} must be an integer, not {_json_type(value)}")
    return args


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array", dict: "an object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
