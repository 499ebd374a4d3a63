"""Secrets in text: provider keys and tokens, private key blocks, JWTs, passwords in URLs, and
values assigned to secret-named keys (`password = ...`, `"client_secret": ...`, `API_KEY=...`).

The gateway replaces these before a model sees a prompt and masks them in answers and logs, so a
false positive mangles code the user asked about; precision comes first. Four families:
  - tokens with a vendor prefix (`ghp_`, `AKIA`, `sk-ant-`...): the prefix is the evidence. Each
    pattern runs only when its literal trigger occurs in the text (a C-speed substring test), so
    a text without triggers costs a few dozen `in` checks;
  - structures (PEM blocks, JWTs, `scheme://user:password@host`), each behind its own trigger;
  - assignments: a secret word in a key name (found by one keyword regex, then the whole name
    is judged by its parts) and a value that passes placeholder, reference and entropy checks.
    The key name alone never suffices: `password: str`, `token = get_token()`, `${DB_PASS}` and
    `YOUR_API_KEY` are not secrets;
  - passwords given to a command as an option (`sshpass -p`, `mysql -p...`, `curl -u user:pw`):
    only for commands known to take one there, as `-p` is a port or `--parents` to most others.

`has_secret_trigger` tells the streaming output guard how much of an unreleased tail to hold so
that every finding lies wholly in released text and a stream is judged as the whole answer is.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from itertools import pairwise
from urllib.parse import unquote

from seekgate.guards.types import Finding, Kind, without_overlaps

__all__ = ["SECRET_TYPES", "find_secrets", "has_secret_trigger"]

# --- vendor tokens -------------------------------------------------------------------------

# (type, literal triggers, pattern). A match must not continue a word on the left (checked in
# code, so the literal prefix keeps sre's fast search) nor on the right (the lookahead).
_R = r"(?![\w-])"
_TOKENS: list[tuple[str, tuple[str, ...], str]] = [
    ("aws_access_key_id", ("AKIA", "ASIA"), r"(?:AKIA|ASIA)[A-Z0-9]{16}" + _R),
    ("gcp_api_key", ("AIza",), r"AIza[\w-]{35}" + _R),
    ("github_token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), r"gh[pousr]_[A-Za-z0-9]{36,251}" + _R),
    ("github_token", ("github_pat_",), r"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}" + _R),
    ("gitlab_token", ("glpat-",), r"glpat-[\w-]{20,}(?:\.[\w-]+){0,2}" + _R),
    ("bitbucket_app_password", ("ATBB",), r"ATBB[A-Za-z0-9]{32}" + _R),
    ("slack_token", ("xox",), r"xox[abposr]-(?:\d+-)+[A-Za-z0-9]{12,}" + _R),
    ("slack_token", ("xapp-",), r"xapp-\d-[A-Z0-9]+-\d+-[a-f0-9]{32,}" + _R),
    ("slack_webhook", ("hooks.slack.com",), r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/]{20,}"),
    ("discord_webhook", ("/api/webhooks/",), r"https://(?:\w+\.)?discord(?:app)?\.com/api/webhooks/\d{15,20}/[\w-]{50,}"),
    ("telegram_bot_token", (":AA",), r"\d{8,10}:AA[\w-]{33}" + _R),
    ("stripe_key", ("k_live_", "k_test_"), r"[sr]k_(?:live|test)_[A-Za-z0-9]{20,247}" + _R),
    ("stripe_webhook_secret", ("whsec_",), r"whsec_[A-Za-z0-9+/=]{32,}" + _R),
    ("square_token", ("sq0",), r"sq0(?:atp|csp)-[\w-]{22,43}" + _R),
    ("square_token", ("EAAA",), r"EAAA[\w-]{60}" + _R),
    ("braintree_token", ("access_token$production$",), r"access_token\$production\$[a-z0-9]{16}\$[a-f0-9]{32}"),
    ("sendgrid_api_key", ("SG.",), r"SG\.[\w-]{22}\.[\w-]{43}" + _R),
    ("mailgun_api_key", ("key-",), r"key-[0-9a-f]{32}" + _R),
    ("anthropic_api_key", ("sk-ant-",), r"sk-ant-(?:api|admin|oat|sid)\d\d-[\w-]{32,}" + _R),
    ("openai_api_key", ("sk-",), r"sk-(?!ant-)(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{32,}" + _R),
    ("huggingface_token", ("hf_",), r"hf_[A-Za-z0-9]{34}" + _R),
    ("groq_api_key", ("gsk_",), r"gsk_[A-Za-z0-9]{52}" + _R),
    ("replicate_api_token", ("r8_",), r"r8_[A-Za-z0-9]{37}" + _R),
    ("npm_token", ("npm_",), r"npm_[A-Za-z0-9]{36}" + _R),
    ("pypi_token", ("pypi-AgE",), r"pypi-AgE(?:IcHlwaS5vcmc|NdGVzdC5weXBpLm9yZw)[\w-]{50,}" + _R),
    ("rubygems_api_key", ("rubygems_",), r"rubygems_[a-f0-9]{48}" + _R),
    ("nuget_api_key", ("oy2",), r"oy2[a-z0-9]{43}" + _R),
    ("docker_hub_token", ("dckr_pat_",), r"dckr_pat_[\w-]{27,}" + _R),
    ("shopify_token", ("shp",), r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}" + _R),
    ("atlassian_api_token", ("ATATT3",), r"ATATT3[\w=-]{100,}" + _R),
    ("digitalocean_token", ("_v1_",), r"do[opr]_v1_[a-f0-9]{64}" + _R),
    ("heroku_api_key", ("HRKU-",), r"HRKU-[\w-]{60}" + _R),
    ("new_relic_key", ("NRAK-",), r"NRAK-[A-Z0-9]{27}" + _R),
    ("sentry_token", ("sntry",), r"sntrys_eyJ[\w=+/-]{50,}|sntryu_[a-f0-9]{64}" + _R),
    ("linear_api_key", ("lin_api_",), r"lin_api_[A-Za-z0-9]{40}" + _R),
    ("notion_token", ("secret_", "ntn_"), r"(?:secret_[A-Za-z0-9]{43}|ntn_[A-Za-z0-9]{46})" + _R),
    ("vault_token", ("hvs.", "hvb."), r"hv[sb]\.[\w-]{24,}" + _R),
    ("doppler_token", ("dp.",), r"dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44}" + _R),
    ("postman_api_key", ("PMAK-",), r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}" + _R),
    ("age_secret_key", ("AGE-SECRET-KEY-1",), r"AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}" + _R),
    ("jwt", ("eyJ",), r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]*" + _R),
]
# The value inside its marker: the key of a connection string, the public key of a DSN.
_VALUED: list[tuple[str, tuple[str, ...], str]] = [
    ("azure_storage_key", ("AccountKey=",), r"AccountKey=([A-Za-z0-9+/]{86}==)"),
    ("sentry_dsn", (".sentry.io",), r"https://([a-f0-9]{32})@[\w.-]*\.sentry\.io/\d+"),
]
_COMPILED = [(t, trig, re.compile(p)) for t, trig, p in _TOKENS + _VALUED]
# Each trigger once, with the patterns it calls for: a text is searched for each a single time.
_BY_TRIGGER = {
    trigger: [(type_, pattern) for type_, triggers, pattern in _COMPILED if trigger in triggers]
    for trigger in dict.fromkeys(t for _, triggers, _ in _COMPILED for t in triggers)
}
# No literal prefix: a base64 user id, a timestamp and an HMAC. Checked for randomness, and (in
# code, to keep sre's first-character scan) not to continue a word on the left.
_DISCORD_BOT = re.compile(r"[MNO][A-Za-z0-9_-]{23,25}\.[\w-]{6}\.[\w-]{27,38}" + _R)

# --- structures ----------------------------------------------------------------------------

_PEM_LABEL = r"(?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?"
_PEM_BEGIN = re.compile(rf"-----BEGIN ({_PEM_LABEL})-----")
# The base64 run of a block cut off before its END: lines of base64 (real or JSON-escaped line
# breaks) and PEM headers such as `Proc-Type: 4,ENCRYPTED`.
_PEM_RUN = re.compile(r"(?:(?:\r?\n|\\r?\\n)(?:[A-Za-z0-9+/=]+|[\w-]+: [^\n\\]*))*")
_URL_CREDS = re.compile(r"(?<![\w+.-])[A-Za-z][\w+.-]{1,20}://([^\s:/?#@'\"<>\[\],]*):([^\s:/?#@'\"<>\[\],]+)@[\w\[]")
_DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]*")

# --- passwords on a command line -------------------------------------------------------------

# Commands that take a password as an option, and that option (up to where the value starts)
# somewhere in the rest of the command. `-p` is a port, `--parents` or `--publish` to most others.
_CLI_OPTIONS = {
    "sshpass": r"[ \t]-p[ \t]*",
    **dict.fromkeys(("mysql", "mysqldump", "mysqladmin", "mariadb", "mariadb-dump"), r"[ \t]-p(?=\S)"),  # `-p db` asks for it
    **dict.fromkeys(
        ("docker", "podman", "nerdctl", "buildah", "skopeo", "helm", "oras"),
        r"[ \t]+(?:registry[ \t]+)?login\b.*?[ \t]-p(?:[ \t]+|=)?",  # `docker login`, not `docker run -p`
    ),
    "curl": r"""[ \t](?:-u|-U|--user|--proxy-user)(?:[ \t]+|=)?(?P<q>['"]?)[^\s:'"]*:""",
    "smbclient": r"""[ \t](?:-U|--user)(?:[ \t]+|=)?(?P<q>['"]?)[^\s%'"]*%""",
    "redis-cli": r"[ \t]-a[ \t]+",
    **dict.fromkeys(("sqlcmd", "bcp"), r"[ \t]-P[ \t]*"),
    **dict.fromkeys(("ldapsearch", "ldapadd", "ldapmodify", "ldapdelete", "ldapwhoami"), r"[ \t]-w[ \t]+"),
    **dict.fromkeys(("zip", "unzip"), r"[ \t]-P[ \t]+"),
    "7z": r"[ \t]-p(?=\S)",
    **dict.fromkeys(("mongo", "mongosh", "mongodump", "mongorestore"), r"[ \t]-p[ \t]+"),
    "keytool": r"[ \t]-(?:src|dest)?(?:store|key)pass[ \t]+",
    "openssl": r"[ \t]-pass(?:in|out)?[ \t]+(?P<q>['\"]?)pass:",
}
_CLI_OPTION = {name: re.compile(option if "login" in option else ".*?" + option) for name, option in _CLI_OPTIONS.items()}
# Longest first, so that `mysqldump` is not read as `mysql`.
_CLI_COMMAND = re.compile("|".join(re.escape(c) for c in sorted(_CLI_OPTIONS, key=len, reverse=True)) + r"(?![\w.-])")
_CLI_HINTS = (" -p", " -u", " -U", " --user", " -a", " -P", " -w", "pass")  # one must occur: a cheap test
_CLI_STAGE = re.compile(r"[^\n|;&]*")  # the rest of one command: to a pipe, `;`, `&&` or the line end
_CLI_VALUE = re.compile(r"""'([^'\n]*)'|"([^"\n]*)"|([^\s'"|;&<>()`]+)""")

# --- assignments ---------------------------------------------------------------------------

# Finds candidate key names; `_name_kind` decides. Provider names catch context-only keys.
_KEYWORDS = r"pass|pwd|secret|token|key|cred|auth|bearer|twilio|heroku|datadog|cohere|mistral"
_KEYWORD = re.compile(_KEYWORDS, re.IGNORECASE)
_KEYWORD_LOWER = re.compile(_KEYWORDS)  # over lower-cased text: several times faster than IGNORECASE
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_ASSIGN = re.compile(
    r"""[\w.-]*(?P<kq>["']?)(?:(?P<xml>>)|[ \t]*(?P<sep>:=|=>|=(?!=)|:(?:[ \t]*\w[\w\[\], .|]*?[ \t]*=(?!=))?)|(?P<sp>[ \t]+))
    [ \t]*(?:(?:Bearer|Basic|Token)[ \t]+)?(?:[rbuf](?=["'`]))?
    (?:"(?P<dq>[^"\n]*)"|'(?P<sq>[^'\n]*)'|`(?P<bq>[^`\n]*)`|(?P<v>[^\s"'`,;<>()\[\]{}]+))""",
    re.VERBOSE,
)
_PASSWORD_PARTS = frozenset({"password", "passwd", "pwd", "pass", "passphrase", "passcode"})
_SECRET_PARTS = frozenset({"secret", "token", "apikey", "credential", "credentials", "bearer", "authorization"})
_KEY_OWNERS = frozenset(
    """
    api access secret private signing encryption master app auth account license session client service shared hmac jwt
    admin root webhook
    """.split()  # noqa: SIM905 -- a word list reads best as words
)
# A name ending like this holds facts about a secret, not the secret (`token_url`, `password_hint`).
_NOT_A_VALUE = frozenset(
    """
    url uri endpoint type path file filename dir name id ids length len count limit size max min field env var header
    prefix policy regex pattern label hint prompt help placeholder format mode enabled required expires expiry ttl timeout
    arn ref source provider kind template encoding algorithm usage budget index idx cost hash digest reset confirm
    confirmation strength rules
    """.split()  # noqa: SIM905 -- a word list reads best as words
)
# Keys whose values are too regular for the entropy test, told by name and exact shape.
_CONTEXT = [
    ("aws_secret_access_key", re.compile(r"aws.*secret|secret.*access", re.IGNORECASE), re.compile(r"[A-Za-z0-9/+]{40}")),
    ("twilio_api_key", re.compile(r"twilio", re.IGNORECASE), re.compile(r"(?:AC|SK)[a-f0-9]{32}")),
    ("twilio_auth_token", re.compile(r"twilio", re.IGNORECASE), re.compile(r"[a-f0-9]{32}")),
    (
        "heroku_api_key",
        re.compile(r"heroku", re.IGNORECASE),
        re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    ),
    ("datadog_api_key", re.compile(r"datadog|\bdd_(?:api|app)|^dd_", re.IGNORECASE), re.compile(r"[a-f0-9]{32}|[a-f0-9]{40}")),
    ("cohere_api_key", re.compile(r"cohere", re.IGNORECASE), re.compile(r"[A-Za-z0-9]{40}")),
    ("mistral_api_key", re.compile(r"mistral", re.IGNORECASE), re.compile(r"[A-Za-z0-9]{32}")),
]
_CONTEXT_NAME = re.compile("|".join(c.pattern for _, c, _ in _CONTEXT), re.IGNORECASE)  # any of them, in one search
_CAMEL = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
# Placeholders, matched in the lower-cased value: a marker anywhere, a `$` reference, or a word
# that stands for a value. Every marker starts with a fixed character, so sre skips ahead in C.
_PLACEHOLDER_MARK = re.compile(
    r"example|sample|dummy|fake|placeholder|redacted|change_?me|your[_-]|<[^>]*>|\$[{(]|\{\{|\{%|%\(|%s|xxxx|\*\*\*|\.\.\.|…"
    r"|insert|replace|todo|deadbeef|cafebabe|0123456|123456789|abcdefgh|qwerty"
)
_PLACEHOLDER_WORD = re.compile(
    r"(?:none|null|nil|true|false|yes|no|on|off|undefined|required|optional|empty|string|str|bool|int|secret|password|passwd"
    r"|pwd|token|pass|test\w*|x+|\*+)\d*"
)
# Example markers for vendor tokens, also lower-cased: `test` is not one (Stripe's `sk_test_` keys are real).
_EXAMPLE = re.compile(r"example|sample|dummy|fake|placeholder|deadbeef|xxxxxx|0123456789|123456789|abcdefghij")
_TOKEN_CHARS = re.compile(r"[\w+/=.~:-]+")  # generated keys; symbol soup is a regex or a format
_ONE_TOKEN = re.compile(r"[^\s{}]+")  # prose and templates are not secrets
_SCHEME = re.compile(r"(?:Bearer|Basic|Token) +")
_VOWEL = re.compile(r"[aeiouyAEIOUY]")
_CLUSTER = re.compile(r"[^aeiouyAEIOUY]{4}")
_LOWER_NAME = re.compile(r"[a-z0-9_-]+")
_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*")
_PATH_START = re.compile(r"(?:\.{1,2}/|~/|/|[A-Za-z]:\\)[\w.@~/\\-]*$")
_SEPARATORS = re.compile(r"[_\-. ]+")
_DOTTED = re.compile(r"(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*")
_NOT_SECRET_SHAPE = re.compile(
    r"[\d_.,:+-]+|v?\d+(?:\.\d+)+\S*|#[0-9a-fA-F]{3,8}|\w+://.*|(?:sha\d+|md5|h1)[:-].*"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|(?:ssh-|ecdsa-).*|[A-Za-z]\w*::.*"
)
# A file or host name (`server.key`, `smtp.gmail.com`); its stem must read as names, as a random
# password may end in `.io` too.
_FILENAME = re.compile(r"([\w@-]+(?:\.[\w@-]+)*)\.[a-z]{1,4}\d?")
_NAME_PIECES = re.compile(r"[._@-]+")
# A password a person chose: letters, digits and punctuation (`Sunflower88!`, `Harbor1814.`).
_HUMAN_PASSWORD = re.compile(r"(?=[^A-Za-z]*[A-Za-z])(?=\D*\d)(?=.*[!#%&*.?@^~])[\w!#%&*.?@^~]{6,}")

SECRET_TYPES = tuple(
    dict.fromkeys(
        [t for t, _, _ in _TOKENS + _VALUED]
        + ["discord_bot_token", "private_key", "url_credentials"]
        + [t for t, _, _ in _CONTEXT]
        + ["dotenv_secret", "password_assignment", "generic_secret"]
    )
)
# A private key block outranks the tokens inside it; vendor types outrank structural ones.
_PRIORITY = {t: i for i, t in enumerate(dict.fromkeys(("private_key", *SECRET_TYPES)))}
_MAX_HOLD = 16 * 1024


def find_secrets(text: str) -> list[Finding]:
    """Secrets in `text`, sorted and without overlaps (the more specific type wins)."""
    found: list[tuple[int, int, str]] = []
    present = [t for t in _BY_TRIGGER if t in text]
    for type_, pattern in dict.fromkeys(p for t in present for p in _BY_TRIGGER[t]):
        found += _tokens(text, type_, pattern)
    if "." in text:
        found += [
            (*m.span(), "discord_bot_token")
            for m in _DISCORD_BOT.finditer(text)
            if _starts_word(text, m) and _random(m.group(), 40)
        ]
    if "PRIVATE KEY" in text:
        found += _private_keys(text)
    if "://" in text and "@" in text:
        found += _url_credentials(text)
    found += _assignments(text)
    if any(option in text for option in _CLI_HINTS):
        found += _cli_passwords(text)
    if found and "base64," in text:
        images = [m.span() for m in _DATA_URI.finditer(text)]
        found = [f for f in found if not any(s <= f[0] and f[1] <= e for s, e in images)]
    return without_overlaps((_PRIORITY[t], Finding(s, e, Kind.SECRET, t)) for s, e, t in found)


def _starts_word(text: str, m: re.Match[str]) -> bool:
    return m.start() == 0 or text[m.start() - 1] not in _NAME_CHARS or text[m.start() - 1] == "."


def _tokens(text: str, type_: str, pattern: re.Pattern[str]) -> list[tuple[int, int, str]]:
    out = []
    for m in pattern.finditer(text):
        start, end = m.span(m.lastindex or 0)
        value = m.group(m.lastindex or 0)
        if not _starts_word(text, m):
            continue  # inside a longer word: base64 data, an identifier
        if _EXAMPLE.search(value.lower()) or _entropy(value) < 3.0:
            continue
        out.append((start, end, type_))
    return out


def _private_keys(text: str) -> list[tuple[int, int, str]]:
    out = []
    for m in _PEM_BEGIN.finditer(text):
        end_marker = f"-----END {m.group(1)}-----"
        end = text.find(end_marker, m.end())
        stop = end + len(end_marker) if end >= 0 else _PEM_RUN.match(text, m.end()).end()
        if not out or m.start() >= out[-1][1]:
            out.append((m.start(), stop, "private_key"))
    return out


def _url_credentials(text: str) -> list[tuple[int, int, str]]:
    out = []
    for m in _URL_CREDS.finditer(text):
        user, password = m.group(1), m.group(2)
        plain = unquote(password)
        if password != user and not _placeholder(plain) and not _wordy(plain, digits=False) and _ONE_TOKEN.fullmatch(plain):
            out.append((m.start(2), m.end(2), "url_credentials"))
    return out


def _cli_passwords(text: str) -> list[tuple[int, int, str]]:
    out = []
    for m in _CLI_COMMAND.finditer(text):
        if m.start() and text[m.start() - 1] in _NAME_CHARS:
            continue  # part of a longer name: `file.zip`, `my-curl`
        for start, end in _cli_values(text, m):
            if _judge("password", "password", text[start:end], quoted=True, env=False):
                out.append((start, end, "password_assignment"))
    return out


def _cli_values(text: str, command: re.Match[str]) -> list[tuple[int, int]]:
    """Where the passwords given to `command` are (keytool takes two)."""
    out: list[tuple[int, int]] = []
    at = command.end()
    stage_end = _CLI_STAGE.match(text, at).end()  # type: ignore[union-attr]  # matches empty
    while option := _CLI_OPTION[command.group()].match(text, at, stage_end):
        at = option.end()
        quote = option.groupdict().get("q")
        if quote:  # opened before the user name: `-u 'admin:pw'`
            close = text.find(quote, at, stage_end)
            if close > at:
                out.append((at, close))
            break
        value = _CLI_VALUE.match(text, at, stage_end)
        if value is None:
            break
        out.append(value.span(value.lastindex or 0))
        at = value.end()
    return out


# --- assignments ---------------------------------------------------------------------------


def _assignments(text: str) -> list[tuple[int, int, str]]:
    out = []
    done = -1  # keyword hits inside a name already judged
    for k in _keywords(text):
        if k.start() < done:
            continue
        start = k.start()
        while start > 0 and k.start() - start < 64 and text[start - 1] in _NAME_CHARS:
            start -= 1  # back to the start of the name: short, never the whole text
        m = _ASSIGN.match(text, k.end())
        if m is None:
            done = k.end()
            continue
        name_end = m.start("kq")
        done = name_end
        name = text[start:name_end].lstrip(".")
        if m.group("sp") is not None and not name.startswith("--"):
            continue  # `password hunter2` is prose; `--password hunter2` is a flag
        name = name.rsplit(".", 1)[-1]  # `settings.password`, not `PQchangePassword.restype`
        kind = _name_kind(name.lstrip("-"))
        if kind is None:
            continue
        group = next(g for g in ("dq", "sq", "bq", "v") if m.group(g) is not None)
        if group == "v" and text.startswith("(", m.end()):
            continue  # a call: token = make_token(...)
        if m.group("xml") and not text.startswith("</", m.end()):
            continue  # `<password>value</password>`, not `<password>@host` in a URL template
        vstart, value = m.start(group), m.group(group)
        if group == "v" and (text[start - 1 : start] in ("?", "&") or text.endswith("&amp;", 0, start)):
            value = value.partition("&")[0].partition("#")[0]  # a URL parameter ends at the next one
        scheme = _SCHEME.match(value)
        if scheme:  # "Bearer <token>" inside quotes
            vstart, value = vstart + scheme.end(), value[scheme.end() :]
        env = m.group("sep") == "=" and _is_env(text, name, m)
        type_ = _judge(name, kind, value, quoted=group != "v", env=env)
        if type_ is not None:
            out.append((vstart, vstart + len(value), type_))
            done = vstart + len(value)
    return out


def _keywords(text: str) -> Iterator[re.Match[str]]:
    """Secret words in `text`, matched in its lower-cased copy when offsets stay the same there
    (lower-casing lengthens a few characters, such as U+0130)."""
    low = text.lower()
    return _KEYWORD_LOWER.finditer(low) if len(low) == len(text) else _KEYWORD.finditer(text)


def _name_kind(name: str) -> str | None:
    """The kind of a secret-holding key name ("password", "secret" or "context"), else None."""
    parts = [p.lower() for p in _CAMEL.findall(name)]
    if not parts or parts[-1] in _NOT_A_VALUE or {"public", "publishable", "pub"} & set(parts):
        return None
    if _CONTEXT_NAME.search(name):
        return "context"
    if any(p in _PASSWORD_PARTS or p.endswith(("password", "passwd")) for p in parts):
        return "password"
    if any(p in _SECRET_PARTS or p.endswith(("secret", "token", "apikey", "secretkey", "privatekey")) for p in parts):
        return "secret"
    for before, part in pairwise(parts):
        if part == "key" and before in _KEY_OWNERS:
            return "secret"
    if parts[-1] == "key" and len(parts) > 1 and name.isupper():
        return "secret"  # env names: STRIPE_KEY, OPENAI_KEY
    return None


def _is_env(text: str, name: str, m: re.Match[str]) -> bool:
    """`NAME=value` in env style: an upper-case name and `=` with no space around it."""
    return name.isupper() and text[m.start("kq") : m.start("sep") + 1] == "=" and text[m.end("sep")] not in " \t"


def _judge(name: str, kind: str, value: str, *, quoted: bool, env: bool) -> str | None:
    """The type of a value assigned to a secret-named key, or None if it is no secret."""
    if kind == "context":
        for type_, name_re, shape in _CONTEXT:
            if name_re.search(name) and shape.fullmatch(value) and not _EXAMPLE.search(value.lower()):
                return type_
        kind = _name_kind_plain(name)
        if kind is None:
            return None
    if not value or _placeholder(value) or _NOT_SECRET_SHAPE.fullmatch(value) or not _ONE_TOKEN.fullmatch(value):
        return None
    if not quoted and not env and _code(value) and not (kind == "password" and _human_password(value)):
        return None  # a reference in code: password=password_var, token = config.token
    if _path(value) or _filename(value):
        return None
    if kind == "password":
        ok = len(value) >= 6 and not _wordy(value, digits=False) and _entropy(value) >= 2.0
    else:
        ok = _random(value, 12) and _TOKEN_CHARS.fullmatch(value) is not None
    if not ok:
        return None
    if env:
        return "dotenv_secret"
    return "password_assignment" if kind == "password" else "generic_secret"


def _placeholder(value: str) -> bool:
    low = value.lower()
    return value.startswith("$") or _PLACEHOLDER_MARK.search(low) is not None or _PLACEHOLDER_WORD.fullmatch(low) is not None


def _human_password(value: str) -> bool:
    """Letters, digits and punctuation, and not a dotted name (`Harbor1814.`, not `self.pass2`)."""
    return _HUMAN_PASSWORD.fullmatch(value) is not None and _DOTTED.fullmatch(value) is None


def _code(value: str) -> bool:
    """An unquoted value that reads as code rather than data: words, a dotted name (`config.token`;
    not when a part of it is random, as in a password with a dot), a reference."""
    dotted = _DOTTED.fullmatch(value) is not None and not any(_random(p, 8) for p in value.split("."))
    return _wordy(value) or dotted or _reference(value)


def _reference(value: str) -> bool:
    """An identifier that reads as code: snake case, or letters only (`pass_fds`, `SecretStr`).
    A long mixed-case random run is a generated token even with an underscore or two in it
    (base64url has them); identifiers split into short pieces (`__pyx_pw_6cython_2`) stay code."""
    if _IDENTIFIER.fullmatch(value) is None or ("_" not in value and any(c.isdigit() for c in value)):
        return False
    return not (_generated(value) and value.lower() != value and value.upper() != value)


def _generated(value: str) -> bool:
    return len(value) >= 20 and max(map(len, value.split("_"))) >= 12 and _random(value, 20)


def _filename(value: str) -> bool:
    m = _FILENAME.fullmatch(value)
    return m is not None and all(len(p) <= 3 or _wordy(p) or _LOWER_NAME.fullmatch(p) for p in _NAME_PIECES.split(m.group(1)))


def _path(value: str) -> bool:
    """A file path: rooted or relative, its parts names rather than random characters."""
    if not _PATH_START.match(value):
        return False
    parts = [p.split(".")[0] for p in value.split("/") if p and p not in (".", "..", "~")]
    return all(len(p) <= 3 or _wordy(p) or _LOWER_NAME.fullmatch(p) for p in parts)


def _name_kind_plain(name: str) -> str | None:
    parts = [p.lower() for p in _CAMEL.findall(name)]
    if any(p in _PASSWORD_PARTS for p in parts):
        return "password"
    return "secret" if any(p in _SECRET_PARTS or p == "key" for p in parts) else None


def _random(value: str, min_len: int) -> bool:
    """Random enough to be a generated secret: long, not made of words, mixed, high entropy."""
    if len(value) < min_len or _wordy(value):
        return False
    classes = any(c.islower() for c in value) + any(c.isupper() for c in value) + any(c.isdigit() for c in value)
    # Entropy is capped at log2(length): short values get a proportionally lower bar.
    return classes >= 2 and _entropy(value) >= min(3.0, 0.75 * math.log2(len(value)))


def _wordy(value: str, *, digits: bool = True) -> bool:
    """Made of words (snake, kebab, camel case), with `digits` a short number at the end: a
    name or a phrase, not generated. Random strings split into one- and two-letter pieces."""
    pieces: list[str] = []
    chunks = _SEPARATORS.split(value)
    for i, chunk in enumerate(chunks):
        if chunk and not (chunk.isascii() and chunk.isalnum()):
            return False
        if not (chunk.isdigit() and len(chunk) <= 4 and i < len(chunks) - 1):
            pieces += _CAMEL.findall(chunk)  # a number between separators is a word: for_24_hours
    if pieces and pieces[-1].isdigit():
        if not digits or len(pieces[-1]) > 4:
            return False
        pieces.pop()
    if not pieces or not all(p.isalpha() for p in pieces):
        return False
    lower, separated = any(c.islower() for c in value), len(chunks) > 1
    letters = sum(len(p) for p in pieces)
    return sum(len(p) for p in pieces if _is_word(p, lower, separated)) >= 0.7 * letters


def _is_word(piece: str, lower: bool, separated: bool) -> bool:
    """Pronounceable (a vowel, no long consonant cluster), or an acronym among words."""
    if piece.isupper():  # an acronym: HTTP_PROXY, X-API-KEY; in random text it is noise
        return len(piece) >= 2 and (not lower or (separated and len(piece) <= 4))
    return len(piece) >= 3 and _VOWEL.search(piece) is not None and _CLUSTER.search(piece) is None


def _entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values()) if n else 0.0


# --- streaming -----------------------------------------------------------------------------

# After a keyword: the rest of the name, then a separator (the value may be unfinished) or the
# end of the text (a separator may follow); a `--flag` may also be followed by its value.
_OPEN_VALUE = re.compile(r"""[\w.-]*["']?(?:>|[ \t]*(?::=|=>|=|:)|[ \t]*$)""")
_FLAG_VALUE = re.compile(r"[\w.-]*[ \t]+\S*$")
_NAME_TAIL = re.compile(r"[\w.-]*")
_PROSE_PAIR = re.compile(r"(?<!\S)[a-z]{2,}[,;]?[ \t]+[a-z]{2,}[,.;:!?]?[ \t]")  # "the password", "and then"


def has_secret_trigger(tail: str) -> int | None:
    """Where to start holding back the unreleased `tail` of a stream, or None to release it all.

    Held, from the earliest of: the last whitespace-free run (it may be the start of a token or
    URL); an opened private-key block without its END line (up to _MAX_HOLD characters, then it
    is released and judged as it is); a secret-named key on the unfinished last line with its
    value still to come or unterminated (a value is only recognised next to its key), and
    likewise a password-taking command (`sshpass -p ...`) whose password may still come.
    """
    if not tail:
        return None
    holds: list[int] = []
    run = len(tail)
    if not tail[-1].isspace():
        run = max(tail.rfind(" "), tail.rfind("\n"), tail.rfind("\t"), tail.rfind("\r")) + 1
        if len(tail) - run <= _MAX_HOLD:
            holds.append(run)
    begin = tail.rfind("-----BEGIN")
    if begin >= 0 and len(tail) - begin <= _MAX_HOLD:
        close = tail.find("-----", begin + 10)
        end = tail.find("-----END", begin)
        end_close = tail.find("-----", end + 8) if end >= 0 else -1
        # Open, or its END line is the partial word held anyway: hold the block whole.
        if (close < 0 or "PRIVATE KEY" in tail[begin:close]) and (end_close < 0 or run < end_close + 5):
            holds.append(begin)
    line = tail.rfind("\n") + 1
    if len(tail) - line <= _MAX_HOLD:
        for k in _KEYWORD.finditer(tail, line):
            start = k.start()
            while start > line and tail[start - 1] in _NAME_CHARS:
                start -= 1
            name = tail[start : _NAME_TAIL.match(tail, k.end()).end()].lstrip(".")
            flag = name.startswith("--") and _FLAG_VALUE.match(tail, k.end())
            if (flag or _OPEN_VALUE.match(tail, k.end())) and _name_kind(name.rsplit(".", 1)[-1].lstrip("-")):
                holds.append(start)
                break
        cli = _cli_hold(tail, line)
        if cli is not None:
            holds.append(cli)
    return min(holds) if holds else None


def _cli_hold(tail: str, line: int) -> int | None:
    """The start of a password-taking command on the last line that has not ended yet (no pipe,
    `;` or `&&` after it, no prose): a password may still come, and is only known next to it."""
    for m in _CLI_COMMAND.finditer(tail, line):
        if m.start() > line and tail[m.start() - 1] in _NAME_CHARS:
            continue
        stage_end = _CLI_STAGE.match(tail, m.end()).end()  # type: ignore[union-attr]  # matches empty
        if stage_end == len(tail) and not _PROSE_PAIR.search(tail, m.end()):
            return m.start()
    return None
