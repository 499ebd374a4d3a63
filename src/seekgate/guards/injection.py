"""Prompt injection in retrieved documents and tool results, screened by regular expressions.

A cheap first line, not a classifier: it catches the stock phrasings that try to take over the
model (override its instructions, fake a chat-template role turn, smuggle data out to a URL) and
text hidden from a human reader (zero-width and bidi controls, Unicode tag characters, HTML
comments that address the model). Precision matters more than recall: the screened texts are
mostly code and docs, which talk about prompts, ignore values and configure system prompts all
the time. So each rule asks for the imperative shape of an attack (`ignore all previous
instructions`, not `ignores previous values`), and rules run only when a cheap substring test on
the lower-cased text says their trigger words occur.

A finding covers the attack through the end of its sentence (or line, for role markers), so
stripping it removes the instruction, not only its first words.
"""

from __future__ import annotations

import bisect
import re

from seekgate.guards.types import Finding, Kind

__all__ = ["INJECTION_TYPES", "find_injections"]

INJECTION_TYPES = ("instruction_override", "role_change", "exfiltration", "hidden_text")

_I = re.IGNORECASE | re.MULTILINE
_WS = r"[ \t]+(?:\n[ \t]*)?"  # a phrase may wrap once

# Words between the verb and the noun; at least one must be strong: "ignore any instructions
# written inside it" (a system prompt's own defence) is not an attack, "ignore all ..." is.
_WEAK = r"(?:any|the|these|those|my|of|and|every)"
_STRONG = (
    r"(?:previous|prior|above|earlier|preceding|foregoing|former|original|initial|system|developer|safety|existing"
    r"|old|current|all|your)"
)
_RULES_NOUN = (
    r"(?:instructions?|directions|prompts?|rules?|directives?|guidelines?|context|messages?|guardrails?|constraints?|commands?"
    r"|programming|orders|polic(?:y|ies)|restrictions|training)"
)
_SECRET_NOUN = (
    r"(?:(?:entire\s+|full\s+|whole\s+)?(?:conversation|chat(?:\s+history|\s+log)?|(?:previous\s+|prior\s+)?messages"
    r"|secrets?|env(?:ironment)?(?:\s+var(?:iable)?s|\s+file)?|\.env|api[\s_-]?keys?|access\s+keys?|credentials|passwords?"
    r"|(?:auth\s+|access\s+|session\s+)?tokens?|system\s+prompt|(?:user|private|personal)\s+data|ssh\s+keys?|cookies"
    r"|memory|history))"
)

# Verbs that set instructions aside: "ignore", and "stop following" / "do not obey".
_DROP = (
    r"(?:ignore|disregard|forget|override|bypass|neglect|(?:stop|quit|cease)[ \t]+(?:following|obeying)"
    r"|(?:do[ \t]+not|don't|no[ \t]+longer)[ \t]+(?:follow|obey))"
)

_SEND_WORDS = ("send", "post", "upload", "leak", "forward", "transmit", "exfiltrat", "mail", "submit", "append", "encode", "copy")
_CHAT_WORDS = ("conversation", "chat", "messages", "prompt", "memory", "history")
_SECRET_WORDS = ("secret", "env", "key", "credential", "password", "token", "data", "cookie")

# (type, trigger words in the lower-cased text, pattern). A pattern that matches starts a finding.
# A tuple of tuples asks for one word of each (a verb and an object: `append` alone is too common).
_RULES: list[tuple[str, tuple[str, ...] | tuple[tuple[str, ...], ...], re.Pattern[str]]] = [
    (
        "instruction_override",
        ("ignore", "disregard", "forget", "override", "bypass", "neglect", "follow", "obey"),
        re.compile(
            rf"\b{_DROP}(?:{_WS}{_WEAK}){{0,3}}{_WS}{_STRONG}(?:{_WS}(?:{_WEAK}|{_STRONG})){{0,3}}{_WS}"
            rf"(?:(?:and|or){_WS})?{_RULES_NOUN}\b"
            rf"|\b(?:ignore|disregard|forget)(?:{_WS}(?:all|everything|of|the)){{1,3}}{_WS}(?:you(?:'ve|{_WS}(?:were|have{_WS}been))"
            rf"{_WS}(?:told|given|instructed|taught)|(?:above|before|previously|so{_WS}far|until{_WS}now)"
            rf"(?=[ \t]*(?:,|;|:|and\b|then\b|instead\b)))",  # "ignore the above and say ...", not "ignore all of the above."
            _I,
        ),
    ),
    (
        "instruction_override",
        ("instruction",),
        re.compile(r"^[ \t>*#-]*(?:new|updated|real|actual|important)[ \t]+(?:system[ \t]+)?instructions?[ \t]*:", _I),
    ),
    (
        "instruction_override",
        ("you are now", "from now on", "god mode", "jailbreak mode", "dan mode", "anything now"),
        re.compile(
            r"\byou[ \t]+are[ \t]+now[ \t]+(?:dan\b|in[ \t]+(?:developer|god|jailbreak|unrestricted|dan)[ \t]+mode"
            r"|(?:an?[ \t]+)?(?:unrestricted|unfiltered|jailbroken|uncensored|evil)|free[ \t]+(?:from|of)|no[ \t]+longer[ \t]+bound)"
            r"|\bfrom[ \t]+now[ \t]+on,?[ \t]+you[ \t]+(?:will|must|shall|should|are[ \t]+to)[ \t]+(?:only[ \t]+|always[ \t]+|never[ \t]+)?"
            r"(?:respond|answer|reply|act|behave|pretend|ignore|disregard|obey|roleplay|speak|follow[ \t]+my)"
            r"|\b(?:enable|activate|enter|switch[ \t]+to)[ \t]+(?:god|jailbreak|dan)[ \t]+mode"  # Windows has a developer mode
            r"|\bdo[ \t]+anything[ \t]+now\b",
            _I,
        ),
    ),
    (
        "role_change",
        ("<|", "[inst]", "<<sys>>", "</s>", "<system", "</system"),
        # Template tokens that open a system turn; `<|endoftext|>` alone is tokenizer config.
        re.compile(
            r"<\|im_start\|>[ \t]*(?:system|developer)\b|<\|start_header_id\|>[ \t]*(?:system|developer)[ \t]*<\|end_header_id\|>"
            r"|<\|(?:system|developer)\|>|\[/?INST\]|<</?SYS>>|</s>[ \t]*(?:<s>|\[INST\])|<[ \t]*/?[ \t]*system(?:_prompt)?[ \t]*>",
            _I,
        ),
    ),
    (
        "role_change",
        ("system", "assistant", "developer"),
        re.compile(
            r"^[ \t]*#{0,4}[ \t]*(?:system|developer)(?:[ \t]+(?:prompt|message|instructions?))?[ \t]*:[ \t]*"
            r"(?:$|you\b|ignore|disregard|forget|new\b|from[ \t]+now|always|never|do[ \t]+not|don't|your\b|the[ \t]+user)"
            r"|^[ \t]*assistant[ \t]*:[ \t]*(?:sure|ok(?:ay)?|certainly|of[ \t]+course|i[ \t]+will|i'll|here[ \t]+(?:is|are))\b",
            _I,
        ),
    ),
    (
        "exfiltration",
        (_SEND_WORDS, _CHAT_WORDS + _SECRET_WORDS),
        re.compile(
            rf"\b(?:send|post|upload|leak|forward|transmit|exfiltrate|e-?mail|submit|append|encode|copy)(?:{_WS}(?:all|the|this|your|my|any|every|of|user's|entire)){{0,3}}"
            rf"{_WS}{_SECRET_NOUN}\b[^.\n]{{0,80}}?\b(?:to|at|into|via|using)\b[^.\n]{{0,40}}?(?:https?://|\b[\w.+-]+@[\w-]+\.\w|webhook|\burl\b|endpoint|server|e-?mail)",
            _I,
        ),
    ),
    (
        "exfiltration",
        ("system prompt", "instructions", "api key", "secrets", "environment variables", "credentials"),
        re.compile(
            rf"\b(?:reveal|print|repeat|output|show|display|disclose|leak)(?:{_WS}(?:me|us))?(?:{_WS}(?:your|the|all|of|entire|full|hidden|initial|original|secret)){{1,3}}"
            rf"{_WS}(?:system{_WS}prompt|(?:hidden|initial|original|secret|system){_WS}instructions|api{_WS}keys|secrets|env(?:ironment)?{_WS}variables|credentials)\b",
            _I,
        ),
    ),
    (
        "exfiltration",
        ("](http",),
        # A link or image whose query carries a template for the data to steal: ?q={secret}.
        re.compile(
            r"!?\[[^\]\n]{0,200}\]\(\s*<?https?://[^\s)?#]+\?[^\s)]*?=(?:\{|%7b|\$\{|\[[A-Z_]+\]|<[a-z_ ]+>)[^\s)]*\)?", _I
        ),
    ),
    (
        "exfiltration",
        ("curl", "wget"),
        re.compile(
            r"\b(?:curl|wget)\b[^\n]{0,200}?(?:\$\([ \t]*(?:env|printenv|set|cat[ \t][^)]*(?:\.env|\.ssh|\.aws|credentials|id_rsa|passwd|shadow)[^)]*)[ \t]*\)"
            r"|`(?:env|printenv)`)[^\n]*",
            _I,
        ),
    ),
    (
        "exfiltration",
        ("env |", "env|"),
        # the whole environment piped, through any filters, to a network client
        re.compile(
            r"\b(?:env|printenv)(?:[ \t]+-\w+)*[ \t]*\|(?:[^|\n]*\|)*?[ \t]*(?:curl|wget|nc|ncat|netcat|socat|telnet)\b[^\n]*", _I
        ),
    ),
]


def _gate(triggers: tuple[str, ...] | tuple[tuple[str, ...], ...]) -> tuple[frozenset[str], frozenset[str]]:
    """A rule's trigger words as two sets: one word of the first must occur, and of the second if
    it is not empty."""
    if isinstance(triggers[0], tuple):
        first, second = triggers
        return frozenset(first), frozenset(second)
    return frozenset(triggers), frozenset()  # type: ignore[arg-type]  # a tuple of words


_GATED = [(type_, *_gate(triggers), pattern) for type_, triggers, pattern in _RULES]
# Every trigger word once: each text is searched for each word a single time.
_TRIGGERS = tuple(dict.fromkeys(t for _, first, second, _ in _GATED for t in (*sorted(first), *sorted(second))))

# Invisible characters, by what they do. Hidden text is a run of three or more zero-width
# characters (a message), bidi embedding, override and isolate controls next to text (alone they
# are vocabulary entries), and Unicode tag characters (invisible ASCII) outside the emoji flag
# sequences that legitimately use them (a black flag and a short tag run). A single zero-width
# character is common in copied text; it counts only when the text without it reads as an
# injection (`ig\u200bnore all previous ...`). One character class finds the runs (sre scans for
# a class fast; lookarounds at every character were several times slower on non-ASCII text).
_ZW_CHARS = "\u200b-\u200d\u2060\u180e\ufeff"
_BIDI_CHARS = "\u202a-\u202e\u2066-\u2069"
_TAG_CHARS = "\U000e0000-\U000e007f"
_ZERO_WIDTH = re.compile(f"[{_ZW_CHARS}]+")
_TAG = re.compile(f"[{_TAG_CHARS}]")
_INVISIBLE = re.compile(f"[{_ZW_CHARS}]+|[{_BIDI_CHARS}]+|[{_TAG_CHARS}]+")
_FLAG = "\U0001f3f4"
_FLAG_TAGS = 7  # a subdivision flag: the black flag, its region in tags (`gbsct`), a cancel tag
_COMMENT = re.compile(r"<!--(.{0,2000}?)-->", re.DOTALL)
_ADDRESSES_MODEL = re.compile(
    r"\b(?:ais?|assistants?|llms?|(?:large[ \t]+)?language[ \t]+models?|chatbots?|claude|chatgpt|gpt(?:-\w+)?|copilot|gemini"
    r"|(?:ai|llm|coding)[ \t]+agents?)\b",
    re.IGNORECASE,
)
_IMPERATIVE = re.compile(
    r"\b(?:ignore|disregard|forget|must|should|always|never|do[ \t]+not|don't|instead|tell|say|reply|respond|include"
    r"|send|recommend|mention|output|print)\b",
    re.IGNORECASE,
)
# Chat-format code: a template slot or string concatenation next to the marker.
_TEMPLATE = re.compile(r"\{\{?[ \t]*[\w.\[\]'\"]+[ \t]*\}\}?|['\"][ \t]*\+|\+[ \t]*['\"]")
# "You can override the system prompt per request": documentation of a setting, not an order.
_DESCRIBES = re.compile(
    r"\b(?:can|could|may|might|(?<!need )(?<!have )to|lets?[ \t]+(?:you|users?|callers?|clients?)"
    r"|allows?[ \t]+(?:you|users?|callers?|clients?)[ \t]+to)(?:[ \t]+(?:also|easily|still|optionally))?[ \t]+$",
    re.IGNORECASE,
)
_CONFIGURES = re.compile(r"(?:override|bypass)\b", re.IGNORECASE)
# "[INST] and [/INST] mark the user turn": markers named in prose, not used.
_NAMED_MARKER = re.compile(
    r"[ \t]*(?:(?:,|/|and|or)[ \t]*(?:\[/?INST\]|<</?SYS>>|<\|[\w-]{1,30}\|>|</?system>|</?s>)"
    r"|(?:marks?|markers?|tokens?|tags?|delimit\w*|denotes?|wraps?|surrounds?)\b)",
    re.IGNORECASE,
)
_NEGATED = re.compile(r"\b(?:not|never|don't|doesn't|avoid|without)\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")
_MAX_SENTENCE = 400


def find_injections(text: str) -> list[Finding]:
    """Prompt-injection findings in `text`, sorted and without overlaps."""
    low = text.lower()
    present = {t for t in _TRIGGERS if t in low}
    spans: list[tuple[int, int, str]] = []
    for type_, first, second, pattern in _GATED if present else ():
        if not present.isdisjoint(first) and (not second or not present.isdisjoint(second)):
            for m in pattern.finditer(text):
                end = _extend(text, low, m, type_)
                if not _discussed(text, m, end, type_):
                    spans.append((m.start(), end, type_))
    if "<!--" in text:
        for m in _COMMENT.finditer(text):
            body = m.group(1)
            if _ADDRESSES_MODEL.search(body) and _IMPERATIVE.search(body):
                spans.append((m.start(), m.end(), "hidden_text"))
    if not text.isascii():
        spans += [(m.start(), m.end(), "hidden_text") for m in _INVISIBLE.finditer(text) if _hides(text, m)]
        if not spans and _ZERO_WIDTH.search(text):
            spans += _split_words(text)
    return _merged(spans)


def _hides(text: str, run: re.Match[str]) -> bool:
    """An invisible run that hides something (see _INVISIBLE)."""
    first, before, after = run.group()[0], text[run.start() - 1 : run.start()], text[run.end() : run.end() + 1]
    if _ZERO_WIDTH.match(first):
        return run.end() - run.start() >= 3
    if _TAG.match(first):
        return before != _FLAG or run.end() - run.start() > _FLAG_TAGS
    return _is_word(before) or _is_word(after)


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_"


def _discussed(text: str, m: re.Match[str], end: int, type_: str) -> bool:
    """The match is talked about rather than meant: a chat format written in code or named in
    prose, a lone closing marker, advice against an exfiltration, a documented setting."""
    if type_ == "role_change":
        named = _NAMED_MARKER.match(text, m.end()) or text[m.start() - 1 : m.start()] == "`" == text[m.end() : m.end() + 1]
        return bool(_closing(m.group()) or _TEMPLATE.search(text, m.start(), end) or named)
    if type_ == "exfiltration":
        return _NEGATED.search(text, max(0, m.start() - 30), m.start()) is not None  # "never send your API key to ..."
    return _CONFIGURES.match(m.group()) is not None and _DESCRIBES.search(text, max(0, m.start() - 40), m.start()) is not None


def _split_words(text: str) -> list[tuple[int, int, str]]:
    """Injections that read as one only once zero-width characters are taken out, mapped back
    to the original offsets."""
    clean_starts, shifts, removed = [0], [0], 0
    for m in _ZERO_WIDTH.finditer(text):
        removed += m.end() - m.start()
        clean_starts.append(m.end() - removed)
        shifts.append(removed)

    def original(at: int) -> int:
        return at + shifts[bisect.bisect_right(clean_starts, at) - 1]

    found = find_injections(_ZERO_WIDTH.sub("", text))
    return [(original(f.start), original(f.end - 1) + 1, "hidden_text") for f in found]


def _extend(text: str, low: str, m: re.Match[str], type_: str) -> int:
    """The end of a finding: a fake turn through its closing marker (else the end of its line),
    a link as it is, anything else through the end of its sentence."""
    if type_ == "role_change":
        marker = re.sub(r"\s", "", m.group().lower())
        if _closing(marker):
            return m.end()
        closer = next((c for opener, c in _CLOSERS.items() if marker.startswith(opener)), None)
        if closer:
            close = low.find(closer, m.end(), m.end() + 2000)
            if close >= 0:
                return close + len(closer)
        nl = text.find("\n", m.end())
        return len(text) if nl < 0 else nl
    if m.group().startswith(("[", "!")):
        return m.end()
    end = _SENTENCE_END.search(text, m.end(), m.end() + _MAX_SENTENCE)
    if end is None:
        return min(len(text), m.end() + _MAX_SENTENCE)
    return end.start() if text[end.start()] == "\n" else end.end()


def _closing(marker: str) -> bool:
    """A closing marker (`[/INST]`, `</system>`): alone it ends nothing we saw open."""
    marker = re.sub(r"\s", "", marker.lower())
    return marker.startswith(("</system", "[/", "<</")) or (
        marker.startswith("</") and "<s>" not in marker and "[inst]" not in marker
    )


_CLOSERS = {
    "<|im_start|>": "<|im_end|>",
    "<|start_header_id|>": "<|eot_id|>",
    "[inst]": "[/inst]",
    "<<sys>>": "<</sys>>",
    "<system>": "</system>",
    "<system_prompt>": "</system_prompt>",
}


def _merged(spans: list[tuple[int, int, str]]) -> list[Finding]:
    """One finding per run of overlapping or touching spans, typed by the earliest."""
    out: list[Finding] = []
    for start, end, type_ in sorted(spans):
        if out and start <= out[-1].end:
            last = out[-1]
            out[-1] = Finding(last.start, max(last.end, end), Kind.INJECTION, last.type)
        else:
            out.append(Finding(start, end, Kind.INJECTION, type_))
    return out
