import pytest

from seekgate import errors
from seekgate.core.types import ChatRequest, CompletionRequest, Message, Role, TextPart
from seekgate.routing.tasks import choose_task, classify
from seekgate.settings import TaskProfile

TASKS = {name: TaskProfile() for name in ("chat", "editor", "refactor", "tests", "ci", "rag-code", "rag-doc")}


def chat(text: str, **metadata: str) -> ChatRequest:
    return ChatRequest(model="", messages=(Message(role=Role.USER, content=(TextPart(text),)),), metadata=metadata)


DIFF = """diff --git a/app.py b/app.py
--- a/app.py
+++ b/app.py
@@ -1,3 +1,4 @@
 import os
+import sys
"""


@pytest.mark.parametrize(
    ("text", "task"),
    [
        (DIFF, "ci"),
        ("Review this:\n@@ -10,7 +10,8 @@ def f():\n-    x\n+    y", "ci"),
        ("Write unit tests for this function:\ndef add(a, b): return a + b", "tests"),
        ("Can you add tests for the parser?", "tests"),
        ("Give me test cases for the login flow", "tests"),
        ("Please fix the wording of this paragraph: Their going to the store.", "editor"),
        ("Proofread my release notes", "editor"),
        ("fix typos in this README", "editor"),
        ("Refactor this component to use a hook", "refactor"),
        ("Extract the retry logic into a function", "refactor"),
    ],
)
def test_classifier_recognises_strong_signals(text, task):
    assert classify(chat(text)) == task


@pytest.mark.parametrize(
    "text",
    ["What does this error mean: KeyError 'x'", "How do I reverse a list in Python?", "The test suite is slow, why?", "I like the grammar of Rust"],
)
def test_classifier_leaves_ordinary_questions_to_the_default(text):
    assert classify(chat(text)) is None


def test_header_wins_then_metadata_then_classifier_then_default():
    request = chat("Write tests for f", task_type="editor")
    assert choose_task(request, "ci", TASKS, "chat", True).source == "header"
    choice = choose_task(request, None, TASKS, "chat", True)
    assert (choice.name, choice.source) == ("editor", "metadata")
    choice = choose_task(chat("Write tests for f"), None, TASKS, "chat", True)
    assert (choice.name, choice.source) == ("tests", "classifier")
    assert choose_task(chat("Write tests for f"), None, TASKS, "chat", False).name == "chat"
    assert choose_task(chat("hello"), None, TASKS, "chat", True).source == "default"


def test_header_is_case_and_space_insensitive():
    assert choose_task(chat("x"), "  RAG-Code ", TASKS, "chat", True).name == "rag-code"


@pytest.mark.parametrize(("header", "meta", "param"), [("poetry", None, "X-Task-Type"), (None, "poetry", "metadata.task_type")])
def test_unknown_task_is_a_400_listing_the_allowed_ones(header, meta, param):
    request = chat("x", **({"task_type": meta} if meta else {}))
    with pytest.raises(errors.InvalidRequest) as info:
        choose_task(request, header, TASKS, "chat", True)
    assert info.value.param == param and "poetry" in info.value.message
    assert all(name in info.value.message for name in TASKS)


def test_completions_are_not_classified():
    assert classify(CompletionRequest(model="", prompt=DIFF)) is None
