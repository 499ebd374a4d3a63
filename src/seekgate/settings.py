"""One frozen, typed settings object, built once at start-up and passed explicitly.

Layers, later wins: config/default.toml < user TOML (--config or SEEKGATE_CONFIG) <
SEEKGATE_* environment variables < command-line overrides. Unknown keys and bad values stop
start-up with a ConfigError naming the layer (file, variable or flag), the key and what is
allowed.
"""

from __future__ import annotations

import os
import re
import tomllib
import typing
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import msgspec

__all__ = [
    "PII_TYPES",
    "RISK_LEVELS",
    "SCALPEL_ENV",
    "AdminSettings",
    "AnthropicBackendSpec",
    "AnthropicSettings",
    "BackendSpec",
    "CacheSettings",
    "ConfigError",
    "ContextSettings",
    "FakeBackendSpec",
    "GuardProfile",
    "GuardSettings",
    "LlamaCppBackendSpec",
    "MistralrsBackendSpec",
    "ModelSpec",
    "OpenAIBackendSpec",
    "ReviewLinter",
    "ReviewSettings",
    "RoutingSettings",
    "ScalpelSettings",
    "ServerSettings",
    "Settings",
    "TaskProfile",
    "TelemetrySettings",
    "load_settings",
    "resolve_secret",
]

ENV_PREFIX = "SEEKGATE_"
SECRET_PREFIX = "env::"


class ConfigError(Exception):
    """The configuration cannot be used; the message names the layer, the key and the fix."""


class _Spec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class ServerSettings(_Spec):
    host: str = "127.0.0.1"
    port: int = 8080
    default_model: str = "smollm2-135m"
    max_body_bytes: int = 8_388_608
    data_dir: str = "~/.local/share/seekgate"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    preload_default: bool = True

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser()


class _BackendBase(_Spec, tag_field="type"):
    pass


class LlamaCppBackendSpec(_BackendBase, tag="llamacpp"):
    threads: int = 0
    parallel: int = 2
    queue: int = 32
    context_tokens: int = 4096
    batch_tokens: int = 512
    mmap: bool = True
    prefix_cache: bool = True
    prefix_cache_min_tokens: int = 1024
    prefix_cache_memory_mb: int = 512
    prefix_cache_disk_mb: int = 8192
    context_overflow: Literal["error", "trim"] = "error"
    max_output_tokens: int = 0


class MistralrsBackendSpec(_BackendBase, tag="mistralrs"):
    queue: int = 8


class OpenAIBackendSpec(_BackendBase, tag="openai"):
    base_url: str
    api_key: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 300.0
    max_connections: int = 256
    tool_mode: Literal["native", "grammar", "json_schema"] = "native"


class AnthropicBackendSpec(_BackendBase, tag="anthropic"):
    """The Anthropic Messages API (Claude), or a server that speaks it."""

    base_url: str = "https://api.anthropic.com"
    api_key: str | None = "env::ANTHROPIC_API_KEY"
    anthropic_version: str = "2023-06-01"
    default_max_tokens: int = 4096
    """Anthropic requires max_tokens; this is sent when neither the client nor the task sets one."""
    connect_timeout: float = 5.0
    read_timeout: float = 600.0
    """Long: a non-streamed answer of many tokens sends no byte until it is complete."""
    max_connections: int = 256


class FakeBackendSpec(_BackendBase, tag="fake"):
    pass


BackendSpec = LlamaCppBackendSpec | MistralrsBackendSpec | OpenAIBackendSpec | AnthropicBackendSpec | FakeBackendSpec
BACKEND_TYPES = ("llamacpp", "mistralrs", "openai", "anthropic", "fake")


class ModelSpec(_Spec):
    backend: str
    replicas: tuple[str, ...] = ()
    description: str = ""
    path: str | None = None
    hf_repo: str | None = None
    hf_file: str | None = None
    upstream_model: str | None = None
    chat_template: str | None = None


RISK_LEVELS = ("low", "med", "high")


class TaskProfile(_Spec):
    """What a coding task gets: prompt pack, route, guard profile, retrieval, SLO, caching."""

    description: str = ""
    pack: str = ""
    route: tuple[str, ...] = ()
    long_context_tokens: int = 0
    long_context_route: tuple[str, ...] = ()
    guard_profile: str = "default"
    retrieval: str = ""
    slo_p95_ms: int = 0
    cacheable: bool = False
    max_tokens: int = 0
    risk_levels: tuple[Literal["low", "med", "high"], ...] = RISK_LEVELS
    on_high_risk: str = "review"
    on_flagged: str = ""
    requests_per_minute: int = 0
    """A rate limit on the task over every caller together; 0 = none."""
    tokens_per_minute: int = 0


class RoutingSettings(_Spec):
    default_task: str = "chat"
    classify: bool = True
    prompts_dir: str = "prompts"
    retries: int = 1
    retry_backoff_ms: int = 100
    breaker_failures: int = 3
    breaker_cooldown_s: float = 30.0
    slo_window_s: float = 300.0
    slo_min_samples: int = 20


class ModelRule(_Spec):
    pattern: str
    model: str


class AnthropicSettings(_Spec):
    model_map: tuple[ModelRule, ...] = (
        ModelRule(pattern="claude-*haiku*", model="smollm2-135m"),
        ModelRule(pattern="claude-*", model="auto"),
    )


class ContextSettings(_Spec):
    """Code-RAG and Doc-RAG: where indexes live, how files are cut, how chunks are embedded."""

    store: Literal["sqlite", "postgres"] = "sqlite"
    postgres_url: str | None = "env::SEEKGATE_POSTGRES_URL"
    embedder: Literal["wordllama", "llamacpp", "openai"] = "wordllama"
    embedding_model: str = ""
    embedding_url: str = ""
    embedding_api_key: str | None = None
    top_k: int = 3
    max_file_bytes: int = 1_000_000
    window_lines: int = 200
    window_overlap: int = 20
    doc_chunk_tokens: int = 1000
    default_repo: str = ""
    index_on_demand: bool = False


GuardMode = Literal["redact", "mask", "flag", "off"]
PII_TYPES = ("email", "phone", "credit_card", "iban", "ip_address", "us_ssn", "person")
"""What `pii_types` may name; "person" needs `names = true` (NER), the rest are patterns."""


class GuardProfile(_Spec):
    """What the guards do to a request and its answer; tasks name a profile (guard_profile)."""

    secrets: GuardMode = "redact"
    """Secrets in the request: redact (placeholder, restored in the answer), mask (never
    restored), flag (leave, report) or off."""
    pii: GuardMode = "redact"
    pii_types: tuple[str, ...] = ("email", "phone", "credit_card", "iban", "ip_address", "us_ssn")
    names: bool = False
    """Person names in prose, by spaCy NER (a few ms a request; the model loads once)."""
    private_ips: bool = False
    """Treat loopback and private-range addresses as PII too."""
    output_secrets: Literal["redact", "flag", "off"] = "redact"
    output_commands: Literal["block", "flag", "off"] = "block"
    injection: Literal["flag", "strip", "block", "off"] = "flag"
    """Prompt-injection screening of retrieved context and tool results."""
    deny: tuple[str, ...] = ()
    """Regular expressions; a request whose text matches one is refused (403)."""
    max_input_chars: int = 0
    """The most characters of message text a request may carry; 0 = no limit."""


class GuardSettings(_Spec):
    require_keys: bool = False
    """Refuse requests without a valid API key (`seekgate keys create`)."""
    rate_limits: Literal["memory", "redis"] = "memory"
    redis_url: str | None = "env::SEEKGATE_REDIS_URL"
    requests_per_minute: int = 0
    """The per-key limit for keys created without their own; 0 = none."""
    tokens_per_minute: int = 0
    anonymous_requests_per_minute: int = 0
    """One shared limit over every request that carries no key; 0 = none."""
    anonymous_tokens_per_minute: int = 0
    scrub_logs: bool = True
    vault_key: str | None = "env::SEEKGATE_VAULT_KEY"
    """An `env::NAME` reference to the secret placeholders are derived from. Unset: a random key
    kept in data_dir/vault.key, made on first start, so placeholders (and the cache keys of
    prompts holding secrets) survive restarts. Replicas sharing one cache set the same value."""
    profiles: dict[str, GuardProfile] = msgspec.field(default_factory=lambda: {"default": GuardProfile()})


class CacheSettings(_Spec):
    """The response cache: exact match on everything that changes an answer (docs/observability.md)."""

    enabled: bool = True
    """Cache the answers of tasks with `cacheable = true`, for deterministic requests only."""
    store: Literal["sqlite", "redis"] = "sqlite"
    redis_url: str | None = "env::SEEKGATE_REDIS_URL"
    ttl_seconds: int = 86_400
    max_entries: int = 100_000
    """SQLite only: the oldest entries go beyond this many (Redis evicts by its own policy)."""


class TelemetrySettings(_Spec):
    """Metrics, the per-request log line and the request log (docs/observability.md)."""

    metrics: bool = True
    """Serve Prometheus metrics at /metrics."""
    log_format: Literal["json", "text"] = "json"
    """`json`: one JSON object per log line, and one line per request with its figures."""
    log_requests: bool = True
    """Log one line per API request (task, model, backend, latency, tokens, cache, guards)."""
    log_prompts: bool = False
    """Also keep prompts and answers (after the guards' redaction) in the request log."""
    request_log: bool = True
    """Keep recent requests in data_dir/seekgate.db for /admin/requests and `seekgate requests`."""
    request_log_days: float = 7.0
    request_log_max_rows: int = 100_000


class ScalpelSettings(_Spec):
    """The scalpel MCP tool: code chores delegated to the local model (docs/scalpel.md)."""

    enabled: bool = True
    """Offer the tool at all: `seekgate mcp` refuses to start and /mcp is not served when false."""
    workspace: str = ""
    """The root every path resolves inside; "" = the directory the server was started in."""
    endpoint: str = ""
    """An OpenAI-compatible chat-completions URL (or its /v1 base) to run chores on; "" = this
    gateway in-process, through its task profile, guards, routing, pins and metrics."""
    endpoint_tool_mode: Literal["native", "grammar", "json_schema"] = "native"
    """How tool calls reach `endpoint`: its own tool calling, or emulated (as backends.*.tool_mode)."""
    model: str = "auto"
    """A model alias ("auto": the task's route); with `endpoint`, the model name that server knows."""
    task: str = "scalpel"
    """The task profile model turns run under (its route, guard profile and rate limits)."""
    max_tokens: int = 1024
    """The most tokens one model turn may generate."""
    timeout_ms: int = 120_000
    """The time budget of one chore, every turn and tool together."""
    max_steps: int = 12
    """The most model turns one chore may take."""
    verify: str = ""
    """A shell command run in the workspace after each edit (`pytest -q`, `ruff check .`); a
    non-zero exit rolls the edit back. "" = none."""
    http: bool = True
    """Also serve the tool over streamable HTTP at /mcp in `seekgate serve`."""
    max_jobs: int = 2
    """Background chores that run at once; more wait their turn."""
    api_key: str | None = None
    """For `seekgate mcp` (stdio) on a gateway with guards.require_keys: an `env::NAME` reference
    to the key its chores run under. Over HTTP the caller's own key is used."""


SCALPEL_ENV: dict[str, tuple[str, bool]] = {
    "SURR_SCALPEL_ENABLED": ("enabled", True),
    "SURR_SCALPEL_ENDPOINT": ("endpoint", False),
    "SURR_SCALPEL_MODEL": ("model", False),
    "SURR_SCALPEL_MAX_TOKENS": ("max_tokens", True),
    "SURR_SCALPEL_TIMEOUT_MS": ("timeout_ms", True),
    "SEEKGATE_SCALPEL_WORKSPACE": ("workspace", False),
}
"""The variables the design documents name, as aliases of scalpel.<key> (and whether the value
is parsed as a TOML scalar, or taken as text). SEEKGATE_SCALPEL__<KEY> works too, and wins."""


class ReviewLinter(_Spec):
    """A deterministic linter `seekgate review` runs on the files a diff touches (docs/review.md)."""

    command: list[str]
    """The program and its arguments. `{files}` (one argument of its own) becomes the files to
    check; without it they are appended. It must print one finding a line as
    `path:line[:column]: message` (ruff --output-format concise, flake8, mypy, eslint -f unix,
    shellcheck -f gcc all can)."""
    patterns: list[str] = msgspec.field(default_factory=list)
    """gitignore-style patterns of the files it checks (`*.py`); empty = every file."""
    enabled: bool = True


class ReviewSettings(_Spec):
    """`seekgate review`: review comments on a diff from the ci task, and linters (docs/review.md)."""

    gateway: str = ""
    """A running gateway's base URL (`https://seekgate.internal`); "" = a gateway built in this
    process on this configuration."""
    api_key: str | None = "env::SEEKGATE_API_KEY"
    """An `env::NAME` reference to the key the review calls the gateway with (guards.require_keys)."""
    task: str = "ci"
    """The task profile the review runs under: its route, guards, rate limits and cache."""
    pack: str = "ci@v2"
    """The prompt pack sent as X-Prompt-Pack: ci@v2 asks for the JSON comments the review reads
    (the ci task's own pack, ci@v1, asks chat callers for a Markdown list)."""
    model: str = "auto"
    """A model alias, or "auto" for the task's route."""
    context_tokens: int = 3072
    """The prompt budget of one model call, pack, instructions and diff together. A larger diff
    is split over several calls, a hunk too big for one call into parts; a call the model still
    refuses as too long is split in half and tried again. Small calls also review better."""
    max_tokens: int = 512
    """The most tokens one answer may take."""
    max_comments: int = 20
    """The most model comments one review keeps, most severe first."""
    max_calls: int = 40
    """The most model calls one review makes (a CI job has a time limit); hunks past it, in diff
    order, are listed as not reviewed. 0 = no limit."""
    concurrency: int = 2
    """Model calls in flight at once (the embedded engine runs them one after another anyway)."""
    reanchor_lines: int = 3
    """A comment on a line the diff does not show moves to the nearest line it shows when that is
    at most this many lines away; else it is dropped. 0 = always drop."""
    fail_on: Literal["error", "warning", "suggestion", "never"] = "error"
    """The exit policy: exit 1 when a model comment is this severe or more."""
    fail_on_lint: bool = True
    """Exit 1 when a linter reports a finding on a line the diff adds or changes."""
    exclude: list[str] = msgspec.field(default_factory=list)
    """gitignore-style patterns of files the model never sees (lock files, generated code)."""
    timeout_s: float = 600.0
    """The time budget of one model call."""
    github_api_url: str = "https://api.github.com"
    """The GitHub REST API; GITHUB_API_URL (set in GitHub Actions, also on GitHub Enterprise) wins."""
    github_token: str | None = "env::GITHUB_TOKEN"
    """An `env::NAME` reference to the token reviews are posted with."""
    linters: dict[str, ReviewLinter] = msgspec.field(default_factory=dict)


class AdminSettings(_Spec):
    api_key: str | None = "env::SEEKGATE_ADMIN_KEY"


class Settings(_Spec):
    server: ServerSettings = ServerSettings()
    routing: RoutingSettings = RoutingSettings()
    admin: AdminSettings = AdminSettings()
    anthropic: AnthropicSettings = AnthropicSettings()
    context: ContextSettings = ContextSettings()
    guards: GuardSettings = GuardSettings()
    cache: CacheSettings = CacheSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    scalpel: ScalpelSettings = ScalpelSettings()
    review: ReviewSettings = ReviewSettings()
    backends: dict[str, BackendSpec] = msgspec.field(default_factory=dict)
    models: dict[str, ModelSpec] = msgspec.field(default_factory=dict)
    tasks: dict[str, TaskProfile] = msgspec.field(default_factory=dict)
    sources: tuple[str, ...] = ()
    """The layers this object was built from, for `seekgate serve` to log."""


def resolve_secret(reference: str | None) -> str | None:
    """Read an `env::NAME` reference; None when unset or the variable is empty."""
    if reference is None:
        return None
    return os.environ.get(reference.removeprefix(SECRET_PREFIX)) or None


def default_config_text() -> str:
    return resources.files("seekgate").joinpath("default.toml").read_text()


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings from every layer. `overrides` maps dotted keys to values (CLI flags)."""
    env = os.environ if env is None else env
    layers: list[tuple[str, dict[str, Any]]] = [("config/default.toml", tomllib.loads(default_config_text()))]
    config_file = config_file or env.get(ENV_PREFIX + "CONFIG")
    if config_file:
        layers.append((str(config_file), _read_toml(Path(config_file))))
    for name, (key, parse) in SCALPEL_ENV.items():
        if name in env:
            value = _parse_scalar(env[name]) if parse else env[name]
            layers.append((f"environment variable {name}", {"scalpel": {key: value}}))
    for name, value in sorted(env.items()):
        if name.startswith(ENV_PREFIX) and "__" in name:
            path = name.removeprefix(ENV_PREFIX).lower().split("__")
            layers.append((f"environment variable {name}", _nest(path, _parse_scalar(value))))
    for key, value in (overrides or {}).items():
        layers.append((f"command-line option for {key}", _nest(key.split("."), value)))

    merged: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}
    for source, data in layers:
        _merge(merged, data, origin, source, ())
    settings = _convert(merged, origin)
    settings = msgspec.structs.replace(settings, sources=tuple(s for s, _ in layers))
    _check_references(settings, origin)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _parse_scalar(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _nest(path: list[str], value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(path):
        out = {part: out}
    return out


def _merge(
    into: dict[str, Any],
    data: Mapping[str, Any],
    origin: dict[tuple[str, ...], str],
    source: str,
    prefix: tuple[str, ...],
) -> None:
    for key, value in data.items():
        path = (*prefix, key)
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value, origin, source, path)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value
            _mark(origin, path, value, source)


def _mark(origin: dict[tuple[str, ...], str], path: tuple[str, ...], value: Any, source: str) -> None:
    origin[path] = source
    if isinstance(value, Mapping):
        for key, sub in value.items():
            _mark(origin, (*path, key), sub, source)


def _source_of(origin: dict[tuple[str, ...], str], path: tuple[str, ...]) -> str:
    while path:
        if path in origin:
            return origin[path]
        path = path[:-1]
    return "configuration"


def _convert(merged: dict[str, Any], origin: dict[tuple[str, ...], str]) -> Settings:
    """Validate section by section, so that an error can name the table key (msgspec paths
    do not carry dict keys)."""
    singles = {"server": ServerSettings, "routing": RoutingSettings, "admin": AdminSettings, "anthropic": AnthropicSettings, "context": ContextSettings, "guards": GuardSettings,
               "cache": CacheSettings, "telemetry": TelemetrySettings, "scalpel": ScalpelSettings,
               "review": ReviewSettings}
    allowed = sorted([*singles, "backends", "models", "tasks"])
    unknown = sorted(set(merged) - set(allowed))
    if unknown:
        raise ConfigError(f"{_source_of(origin, (unknown[0],))}: unknown section {unknown[0]!r}; allowed: {', '.join(allowed)}")
    guards = dict(merged.get("guards", {}))
    raw_profiles = guards.pop("profiles", {})
    if not isinstance(raw_profiles, dict):
        raise ConfigError(f"{_source_of(origin, ('guards', 'profiles'))}: key guards.profiles: must be a table of named profiles")
    # Profiles convert one by one, like the named tables below, so that errors name the profile.
    profiles = {name: _one(value, GuardProfile, ("guards", "profiles", name), origin) for name, value in raw_profiles.items()}
    merged = {**merged, "guards": {**guards, "profiles": profiles}}
    sections = {name: _one(merged.get(name, {}), kind, (name,), origin) for name, kind in singles.items()}
    tables: dict[str, dict[str, Any]] = {}
    for section, kind in (("backends", BackendSpec), ("models", ModelSpec), ("tasks", TaskProfile)):
        raw = merged.get(section, {})
        if not isinstance(raw, dict):
            raise ConfigError(f"{_source_of(origin, (section,))}: key {section}: must be a table of named entries")
        tables[section] = {name: _one(value, kind, (section, name), origin) for name, value in raw.items()}
    return Settings(**sections, backends=tables["backends"], models=tables["models"], tasks=tables["tasks"])


def _one(value: Any, kind: Any, at: tuple[str, ...], origin: dict[tuple[str, ...], str]) -> Any:
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(exc, kind, at, origin)) from None


def _explain(exc: msgspec.ValidationError, kind: Any, at: tuple[str, ...], origin: dict[tuple[str, ...], str]) -> str:
    # msgspec messages end with "- at `$.port`"; turn that into the layer and the full key.
    message, sep, where = str(exc).rpartition(" - at `")
    if not sep:
        message, where = str(exc), "$"
    parts = (*at, *(p for p in where.rstrip("`").removeprefix("$").split(".") if p))
    if message.startswith("Object contains unknown field"):
        parts = (*parts, message.split("`")[1])
        message = f"unknown key; allowed keys here: {', '.join(_allowed_keys(parts[:-1]))}"
    elif message.startswith("Object missing required field"):
        parts = (*parts, message.split("`")[1])
        message = "required key is missing"
    elif parts[-1] == "type" or message.startswith("Object missing required field `type`"):
        message = f"{message}; allowed backend types: {', '.join(BACKEND_TYPES)}"
    elif message.startswith("Invalid enum value") and isinstance(kind, type):
        allowed = typing.get_args(typing.get_type_hints(kind).get(parts[-1]))
        if allowed:
            message = f"{message}; allowed values: {', '.join(map(str, allowed))}"
    return f"{_source_of(origin, parts)}: key {'.'.join(parts)}: {message}"


def _allowed_keys(parts: tuple[str, ...]) -> list[str]:
    if not parts:
        return sorted(f for f in Settings.__struct_fields__ if f != "sources")
    if parts[0] == "server":
        return sorted(ServerSettings.__struct_fields__)
    if parts[0] == "models":
        return sorted(ModelSpec.__struct_fields__)
    if parts[0] == "tasks":
        return sorted(TaskProfile.__struct_fields__)
    if parts[0] == "routing":
        return sorted(RoutingSettings.__struct_fields__)
    if parts[0] == "admin":
        return sorted(AdminSettings.__struct_fields__)
    if parts[0] == "scalpel":
        return sorted(ScalpelSettings.__struct_fields__)
    if parts[0] == "review":
        return sorted(ReviewLinter.__struct_fields__ if len(parts) > 2 and parts[1] == "linters" else ReviewSettings.__struct_fields__)
    if parts[0] == "guards":
        return sorted(GuardProfile.__struct_fields__ if len(parts) > 2 and parts[1] == "profiles" else GuardSettings.__struct_fields__)
    if parts[0] == "backends":
        specs = (LlamaCppBackendSpec, MistralrsBackendSpec, OpenAIBackendSpec, AnthropicBackendSpec)
        return sorted({f for t in specs for f in t.__struct_fields__} | {"type"})
    return []


def _check_references(settings: Settings, origin: dict[tuple[str, ...], str]) -> None:
    def fail(path: tuple[str, ...], message: str) -> None:
        raise ConfigError(f"{_source_of(origin, path)}: key {'.'.join(path)}: {message}")

    known_backends = sorted(settings.backends)
    for alias, model in settings.models.items():
        for replica in model.replicas:
            if replica not in settings.backends:
                fail(("models", alias, "replicas"), f"unknown backend {replica!r}; defined backends: {', '.join(known_backends)}")
        backend = settings.backends.get(model.backend)
        if backend is None:
            fail(("models", alias, "backend"), f"unknown backend {model.backend!r}; defined backends: {', '.join(known_backends)}")
        if isinstance(backend, LlamaCppBackendSpec | MistralrsBackendSpec) and not (model.path or (model.hf_repo and model.hf_file)):
            fail(("models", alias), "a model on an in-process engine needs `path`, or `hf_repo` and `hf_file`")
        if isinstance(backend, OpenAIBackendSpec | AnthropicBackendSpec | FakeBackendSpec) and not model.upstream_model:
            fail(("models", alias, "upstream_model"), "a model on a server backend needs `upstream_model`, the name the server knows it by")
    for name, backend in settings.backends.items():
        if isinstance(backend, OpenAIBackendSpec | AnthropicBackendSpec):
            if backend.api_key is not None and not backend.api_key.startswith(SECRET_PREFIX):
                fail(("backends", name, "api_key"), f"API keys are references to environment variables: write \"{SECRET_PREFIX}VARIABLE_NAME\", never the key itself")
            if not backend.base_url.startswith(("http://", "https://")):
                fail(("backends", name, "base_url"), "must start with http:// or https://")
        if isinstance(backend, AnthropicBackendSpec) and backend.default_max_tokens < 1:
            fail(("backends", name, "default_max_tokens"), "must be at least 1")
        if isinstance(backend, LlamaCppBackendSpec):
            for key in ("parallel", "batch_tokens"):
                if getattr(backend, key) < 1:
                    fail(("backends", name, key), "must be at least 1")
            for key in ("threads", "queue", "context_tokens"):
                if getattr(backend, key) < 0:
                    fail(("backends", name, key), "must not be negative")
    families = {alias.partition("@")[0] for alias in settings.models if "@" in alias}
    for task, profile in settings.tasks.items():
        for key in ("route", "long_context_route"):
            for alias in getattr(profile, key):
                if alias not in settings.models and alias not in families:
                    fail(("tasks", task, key), f"unknown model {alias!r}; defined models: {', '.join(sorted(settings.models))}")
        for key in ("on_high_risk", "on_flagged"):
            target = getattr(profile, key)
            if target and target != "review" and target not in settings.models:
                fail(("tasks", task, key), f"must be \"review\", \"\" or a model alias; {target!r} is not a defined model")
        if profile.on_flagged == "review":
            fail(("tasks", task, "on_flagged"), "flagged answers escalate to a model alias (or \"\" for none), not to review")
        if profile.guard_profile not in settings.guards.profiles:
            fail(("tasks", task, "guard_profile"), f"unknown guard profile {profile.guard_profile!r}; defined: {', '.join(sorted(settings.guards.profiles))}")
        if profile.long_context_tokens and not profile.long_context_route:
            fail(("tasks", task, "long_context_route"), "long_context_tokens is set, so name the route for long prompts")
    if settings.tasks and settings.routing.default_task not in settings.tasks:
        fail(("routing", "default_task"), f"unknown task {settings.routing.default_task!r}; defined tasks: {', '.join(sorted(settings.tasks))}")
    for i, rule in enumerate(settings.anthropic.model_map):
        if rule.model != "auto" and rule.model not in settings.models and rule.model not in families:
            fail(("anthropic", "model_map", str(i), "model"), f"unknown model {rule.model!r}; use \"auto\" or one of: {', '.join(sorted(settings.models))}")
    if settings.admin.api_key is not None and not settings.admin.api_key.startswith(SECRET_PREFIX):
        fail(("admin", "api_key"), f"the admin key is a reference to an environment variable: write \"{SECRET_PREFIX}VARIABLE_NAME\"")
    _check_guards(settings.guards, fail)
    _check_telemetry(settings.cache, settings.telemetry, fail)
    _check_scalpel(settings, fail)
    _check_review(settings, fail)
    server = settings.server
    if server.default_model not in settings.models and server.default_model not in families:
        fail(("server", "default_model"), f"unknown model {server.default_model!r}; defined models: {', '.join(sorted(settings.models))}")
    if not 0 < server.port < 65536:
        fail(("server", "port"), "must be between 1 and 65535")
    if server.max_body_bytes < 1024:
        fail(("server", "max_body_bytes"), "must be at least 1024")


def _check_telemetry(cache: CacheSettings, telemetry: TelemetrySettings, fail: Any) -> None:
    if cache.redis_url is not None and not cache.redis_url.startswith(SECRET_PREFIX):
        fail(("cache", "redis_url"), f"a reference to an environment variable: write \"{SECRET_PREFIX}VARIABLE_NAME\"")
    for section, key, value in (("cache", "ttl_seconds", cache.ttl_seconds), ("cache", "max_entries", cache.max_entries),
                                ("telemetry", "request_log_days", telemetry.request_log_days),
                                ("telemetry", "request_log_max_rows", telemetry.request_log_max_rows)):  # fmt: skip
        if value <= 0:
            fail((section, key), "must be positive")


def _check_scalpel(settings: Settings, fail: Any) -> None:
    scalpel = settings.scalpel
    for key in ("max_tokens", "timeout_ms", "max_steps", "max_jobs"):
        if getattr(scalpel, key) < 1:
            fail(("scalpel", key), "must be at least 1")
    if scalpel.endpoint and not re.match(r"https?://[^/\s]+", scalpel.endpoint):
        fail(
            ("scalpel", "endpoint"),
            f"{scalpel.endpoint!r} is not an http(s) URL; give a chat-completions URL such as "
            'http://127.0.0.1:8111/v1/chat/completions, or "" for this gateway',
        )
    if scalpel.api_key is not None and not scalpel.api_key.startswith(SECRET_PREFIX):
        fail(("scalpel", "api_key"), f'a reference to an environment variable: write "{SECRET_PREFIX}VARIABLE_NAME"')
    if scalpel.endpoint:
        return  # model and task then name things on that server, not here
    families = {alias.partition("@")[0] for alias in settings.models if "@" in alias}
    if scalpel.model != "auto" and scalpel.model not in settings.models and scalpel.model not in families:
        known = ", ".join(sorted(settings.models))
        fail(("scalpel", "model"), f'unknown model {scalpel.model!r}; use "auto" (the task route) or one of: {known}')
    if settings.tasks and scalpel.task not in settings.tasks:
        fail(("scalpel", "task"), f"unknown task {scalpel.task!r}; defined tasks: {', '.join(sorted(settings.tasks))}")


def _check_review(settings: Settings, fail: Any) -> None:
    review = settings.review
    for key in ("max_tokens", "max_comments", "concurrency", "timeout_s"):
        if getattr(review, key) <= 0:
            fail(("review", key), "must be positive")
    if review.context_tokens < 1024:
        fail(("review", "context_tokens"), "must be at least 1024 (the prompt pack and the instructions take about 600)")
    for key in ("reanchor_lines", "max_calls"):
        if getattr(review, key) < 0:
            fail(("review", key), "must not be negative")
    for key in ("api_key", "github_token"):
        value = getattr(review, key)
        if value is not None and not value.startswith(SECRET_PREFIX):
            fail(("review", key), f'a reference to an environment variable: write "{SECRET_PREFIX}VARIABLE_NAME"')
    for key in ("gateway", "github_api_url"):
        value = getattr(review, key)
        if value and not re.match(r"https?://[^/\s]+", value):
            fail(("review", key), f"{value!r} is not an http(s) URL")
    for name, linter in review.linters.items():
        if not linter.command or not linter.command[0]:
            fail(("review", "linters", name, "command"), 'name the program and its arguments, e.g. ["ruff", "check", "--output-format", "concise"]')
    if review.gateway:
        return  # task and model then name things on that server
    families = {alias.partition("@")[0] for alias in settings.models if "@" in alias}
    if review.model != "auto" and review.model not in settings.models and review.model not in families:
        fail(("review", "model"), f'unknown model {review.model!r}; use "auto" (the task route) or one of: {", ".join(sorted(settings.models))}')
    if settings.tasks and review.task not in settings.tasks:
        fail(("review", "task"), f"unknown task {review.task!r}; defined tasks: {', '.join(sorted(settings.tasks))}")


def _check_guards(guards: GuardSettings, fail: Any) -> None:
    if guards.redis_url is not None and not guards.redis_url.startswith(SECRET_PREFIX):
        fail(("guards", "redis_url"), f"a reference to an environment variable: write \"{SECRET_PREFIX}VARIABLE_NAME\"")
    if guards.vault_key is not None and not guards.vault_key.startswith(SECRET_PREFIX):
        fail(("guards", "vault_key"), f"a reference to an environment variable: write \"{SECRET_PREFIX}VARIABLE_NAME\", never the key itself")
    for key in ("requests_per_minute", "tokens_per_minute", "anonymous_requests_per_minute", "anonymous_tokens_per_minute"):
        if getattr(guards, key) < 0:
            fail(("guards", key), "must not be negative (0 = no limit)")
    for name, profile in guards.profiles.items():
        for kind in profile.pii_types:
            if kind not in PII_TYPES:
                fail(("guards", "profiles", name, "pii_types"), f"unknown PII type {kind!r}; known: {', '.join(PII_TYPES)}")
        for i, pattern in enumerate(profile.deny):
            try:
                re.compile(pattern)
            except re.error as exc:
                fail(("guards", "profiles", name, "deny", str(i)), f"not a valid regular expression: {exc}")
        if profile.max_input_chars < 0:
            fail(("guards", "profiles", name, "max_input_chars"), "must not be negative (0 = no limit)")
