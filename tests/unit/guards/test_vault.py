import json
import random
import string

import pytest

from seekgate.guards.types import Action, Finding, Kind
from seekgate.guards.vault import PLACEHOLDER, StreamRestorer, Vault, apply


def _token(seed: int) -> str:
    rng = random.Random(seed)
    return "ghp" + "_" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(36))


def _redacted(text: str, value: str, vault: Vault) -> str:
    start = text.index(value)
    return apply(text, [Finding(start, start + len(value), Kind.SECRET, "github_token", Action.REDACT)], vault)


def test_a_placeholder_names_the_type_and_is_stable_for_the_same_value_across_requests():
    key = b"k" * 32
    token = _token(1)
    first, second = Vault(key), Vault(key)
    a = first.placeholder(token, "github_token")
    assert a == second.placeholder(token, "github_token")
    assert PLACEHOLDER.fullmatch(a) and a.startswith("[GITHUB_TOKEN_")
    assert first.placeholder(_token(2), "github_token") != a
    assert Vault(b"x" * 32).placeholder(token, "github_token") != a


def test_redact_then_restore_gives_back_the_exact_text():
    vault = Vault(b"k" * 32)
    token = _token(3)
    text = f"export GITHUB_TOKEN={token}\nthen run make"
    redacted = _redacted(text, token, vault)
    assert token not in redacted
    assert vault.restore(redacted) == text


def test_masked_values_are_never_restored_and_unknown_placeholders_pass_through():
    vault = Vault(b"k" * 32)
    text = "mail ada@example.org please"
    start = text.index("ada")
    masked = apply(text, [Finding(start, start + 15, Kind.PII, "email", Action.MASK)], vault)
    assert masked == "mail [EMAIL_REDACTED] please"
    assert vault.restore(masked) == masked
    assert vault.restore("[GITHUB_TOKEN_abcdef] is not ours") == "[GITHUB_TOKEN_abcdef] is not ours"


def test_flagged_findings_leave_the_text_alone():
    vault = Vault(b"k" * 32)
    assert apply("call 555-0100", [Finding(5, 13, Kind.PII, "phone", Action.FLAG)], vault) == "call 555-0100"
    assert vault.values == {}


def test_a_placeholder_split_at_every_offset_of_a_stream_is_restored():
    vault = Vault(b"k" * 32)
    token = _token(4)
    placeholder = vault.placeholder(token, "github_token")
    answer = f"Use {placeholder} in the header [see docs] and [x]"
    expected = vault.restore(answer)
    begin = answer.index(placeholder)
    for cut in range(begin, begin + len(placeholder) + 1):
        restorer = StreamRestorer(vault)
        out = restorer.feed(answer[:cut]) + restorer.feed(answer[cut:]) + restorer.finish()
        assert out == expected, cut
        start = expected.index(token)
        assert restorer.spans == [(start, start + len(token))]


def test_a_stream_one_character_at_a_time_holds_back_only_placeholder_prefixes():
    vault = Vault(b"k" * 32)
    placeholder = vault.placeholder(_token(5), "github_token")
    restorer = StreamRestorer(vault)
    released = [restorer.feed(c) for c in f"a [b] {placeholder} c"]
    # `[` is held until `b` shows it cannot start a placeholder
    assert released[:6] == ["a", " ", "", "[b", "]", " "]
    assert "".join(released) + restorer.finish() == vault.restore(f"a [b] {placeholder} c")
    held = [piece for piece in released[6 : 6 + len(placeholder) - 1]]
    assert held == [""] * (len(placeholder) - 1)


def test_inside_tool_call_arguments_a_restored_value_is_json_escaped():
    vault = Vault(b"k" * 32)
    value = 'line one\n"quoted"'
    placeholder = vault.placeholder(value, "password")
    arguments = json.dumps({"content": f"pw={placeholder}"})
    restorer = StreamRestorer(vault, json_string=True)
    pieces = [arguments[i : i + 3] for i in range(0, len(arguments), 3)]
    out = "".join(restorer.feed(p) for p in pieces) + restorer.finish()
    assert json.loads(out) == {"content": f"pw={value}"}
    assert json.loads(vault.restore(arguments, json_string=True)) == {"content": f"pw={value}"}


@pytest.mark.parametrize("text", ["[", "[A", "[GITHUB_TOKEN_", "[GITHUB_TOKEN_3f"])
def test_an_unfinished_placeholder_at_the_end_of_a_stream_is_released_as_it_is(text):
    restorer = StreamRestorer(Vault(b"k" * 32))
    assert restorer.feed(text) == ""
    assert restorer.finish() == text
