import tomllib
from pathlib import Path

import msgspec
import pytest

from seekgate.settings import (
    AnthropicBackendSpec,
    ConfigError,
    RoutingSettings,
    ScalpelSettings,
    TaskProfile,
    FakeBackendSpec,
    GuardProfile,
    GuardSettings,
    LlamaCppBackendSpec,
    ModelSpec,
    OpenAIBackendSpec,
    ServerSettings,
    load_settings,
)

DEFAULT_TOML = Path(__file__).parents[2] / "config" / "default.toml"


def _documented_keys(struct: type[msgspec.Struct]) -> set[str]:
    return {f for f in struct.__struct_fields__}


def test_default_toml_documents_every_server_key_with_its_default():
    raw = tomllib.loads(DEFAULT_TOML.read_text())
    assert set(raw["server"]) == _documented_keys(ServerSettings)
    assert msgspec.convert(raw["server"], ServerSettings) == ServerSettings()


def test_default_toml_documents_every_backend_key():
    text = DEFAULT_TOML.read_text()
    raw = tomllib.loads(text)
    assert set(raw["backends"]["embedded"]) - {"type"} == _documented_keys(LlamaCppBackendSpec)
    assert msgspec.convert(raw["backends"]["embedded"], LlamaCppBackendSpec) == LlamaCppBackendSpec()
    # The openai backend is shown commented out (it needs a server); every key must be there.
    for key in _documented_keys(OpenAIBackendSpec):
        assert f"# {key} = " in text, key
    for key in _documented_keys(ModelSpec):
        assert key in text, key


def test_default_toml_documents_the_anthropic_backend_with_its_defaults():
    # Shown commented out (it needs a key): uncommented, the block is every key at its default.
    text = DEFAULT_TOML.read_text()
    block = text[text.index("# [backends.anthropic]") :].split("\n\n")[0]
    raw = tomllib.loads("\n".join(line.removeprefix("# ") for line in block.splitlines()))["backends"]["anthropic"]
    assert raw.pop("type") == "anthropic"
    assert set(raw) == _documented_keys(AnthropicBackendSpec)
    assert msgspec.convert(raw, AnthropicBackendSpec) == AnthropicBackendSpec()


def test_anthropic_backend_keys_are_checked(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[backends.claude]\ntype = "anthropic"\n[models.sonnet]\nbackend = "claude"\nupstream_model = "claude-sonnet-4-5"\n')
    backend = load_settings(cfg, env={}).backends["claude"]
    assert isinstance(backend, AnthropicBackendSpec) and backend.api_key == "env::ANTHROPIC_API_KEY"
    for toml, expected in (
        ('[backends.claude]\ntype = "anthropic"\napi_key = "sk-ant-123"\n', "backends.claude.api_key.*env::"),
        ('[backends.claude]\ntype = "anthropic"\ndefault_max_tokens = 0\n', "backends.claude.default_max_tokens.*at least 1"),
        ('[backends.claude]\ntype = "anthropic"\n[models.sonnet]\nbackend = "claude"\n', "models.sonnet.upstream_model"),
        ('[backends.claude]\ntype = "anthropic"\nversion = "x"\n', "backends.claude.version.*anthropic_version"),
    ):
        cfg.write_text(toml)
        with pytest.raises(ConfigError, match=expected):
            load_settings(cfg, env={})


def test_default_toml_documents_routing_and_every_task_profile_key():
    raw = tomllib.loads(DEFAULT_TOML.read_text())
    assert set(raw["routing"]) == _documented_keys(RoutingSettings)
    assert msgspec.convert(raw["routing"], RoutingSettings) == RoutingSettings()
    assert set(raw["tasks"]["chat"]) == _documented_keys(TaskProfile)
    assert set(raw["tasks"]) == {"chat", "editor", "refactor", "tests", "rag-code", "rag-doc", "ci", "scalpel"}


def test_task_routes_must_name_known_models(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[tasks.chat]\nroute = ["gpt-9"]\n')
    with pytest.raises(ConfigError, match="tasks.chat.route.*gpt-9"):
        load_settings(cfg, env={})


def test_defaults_load_and_serve_the_bundled_model():
    settings = load_settings(env={})
    assert settings.server.default_model == "smollm2-135m"
    assert settings.server.port == 8080 and settings.server.host == "127.0.0.1"
    assert settings.models["smollm2-135m"].path.startswith("package:")
    assert {"ds-coder-v2-lite", "ds-coder-6.7b"} <= set(settings.models)
    assert isinstance(settings.backends["fake"], FakeBackendSpec)


def test_layers_override_in_order_file_then_env_then_cli(tmp_path):
    cfg = tmp_path / "user.toml"
    cfg.write_text("[server]\nport = 9001\nlog_level = 'debug'\nhost = '0.0.0.0'\n")
    env = {"SEEKGATE_SERVER__PORT": "9002", "SEEKGATE_SERVER__LOG_LEVEL": "warning"}
    settings = load_settings(cfg, env=env, overrides={"server.port": 9003})
    assert settings.server.host == "0.0.0.0"  # file
    assert settings.server.log_level == "warning"  # env over file
    assert settings.server.port == 9003  # CLI over env
    assert settings.sources[0] == "config/default.toml" and str(cfg) in settings.sources


def test_config_file_from_environment_variable(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[server]\nport = 9100\n")
    assert load_settings(env={"SEEKGATE_CONFIG": str(cfg)}).server.port == 9100


def test_user_file_adds_backends_and_models(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[backends.ollama]\ntype = "openai"\nbase_url = "http://127.0.0.1:11434/v1"\napi_key = "env::OLLAMA_KEY"\n'
        '[models."coder-16b"]\nbackend = "ollama"\nupstream_model = "deepseek-coder-v2:16b"\n'
        '[server]\ndefault_model = "coder-16b"\n'
    )
    settings = load_settings(cfg, env={})
    backend = settings.backends["ollama"]
    assert isinstance(backend, OpenAIBackendSpec) and backend.read_timeout == 300.0
    assert settings.models["coder-16b"].upstream_model == "deepseek-coder-v2:16b"
    assert "smollm2-135m" in settings.models  # defaults stay


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[server]\nprot = 1\n", ["c.toml", "server.prot", "unknown key", "port"]),
        ("[server]\nport = 'x'\n", ["c.toml", "server.port", "Expected `int`"]),
        ("[server]\nport = 70000\n", ["c.toml", "server.port", "between 1 and 65535"]),
        ("[server]\nlog_level = 'loud'\n", ["server.log_level", "debug", "info"]),
        ("[backends.x]\ntype = 'magic'\n", ["backends.x", "magic", "llamacpp", "openai"]),
        ("[backends.x]\ntype = 'openai'\n", ["backends.x.base_url", "required"]),
        ("[backends.x]\ntype = 'openai'\nbase_url = 'http://h/v1'\napi_key = 'sk-123'\n", ["backends.x.api_key", "env::"]),
        ("[models.m]\nbackend = 'nope'\n", ["models.m.backend", "nope", "embedded"]),
        ("[models.m]\nbackend = 'embedded'\n", ["models.m", "path"]),
        ("[server]\ndefault_model = 'ghost'\n", ["server.default_model", "ghost", "smollm2-135m"]),
        ("[surver]\nport = 1\n", ["c.toml", "surver", "server"]),
        ("[server\n", ["c.toml", "not valid TOML"]),
    ],
)
def test_bad_config_names_file_key_and_allowed_values(tmp_path, toml, expected):
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, env={})
    for fragment in expected:
        assert fragment in str(info.value)


def test_bad_environment_value_names_the_variable():
    with pytest.raises(ConfigError, match="SEEKGATE_SERVER__PORT.*server.port"):
        load_settings(env={"SEEKGATE_SERVER__PORT": "eighty"})


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.toml", env={})


def test_settings_are_frozen():
    settings = load_settings(env={})
    with pytest.raises(AttributeError):
        settings.server.port = 1  # type: ignore[misc]


def test_default_toml_documents_every_guard_key_and_profile_with_its_defaults():
    raw = tomllib.loads(DEFAULT_TOML.read_text())
    guards = dict(raw["guards"])
    profiles = guards.pop("profiles")
    assert set(guards) | {"profiles"} == _documented_keys(GuardSettings)
    assert set(profiles["default"]) == _documented_keys(GuardProfile)
    assert msgspec.convert(profiles["default"], GuardProfile) == GuardProfile()
    settings = load_settings(env={})
    assert set(settings.guards.profiles) == {"default", "strict", "off", "review"}
    assert settings.guards.profiles["off"].secrets == "off"
    # reviews quote dangerous commands found in a diff: flagged, not blocked, on the ci task
    assert settings.guards.profiles["review"].output_commands == "flag" and settings.tasks["ci"].guard_profile == "review"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[tasks.chat]\nguard_profile = "paranoid"\n', "tasks.chat.guard_profile.*paranoid.*default, off, review, strict"),
        ('[guards.profiles.default]\npii_types = ["shoe_size"]\n', "guards.profiles.default.pii_types.*shoe_size"),
        ('[guards.profiles.default]\ndeny = ["(unclosed"]\n', "guards.profiles.default.deny.0.*regular expression"),
        ('[guards.profiles.default]\noutput_commands = "explode"\n', "output_commands.*allowed values: block, flag, off"),
        ('[guards]\nredis_url = "redis://localhost"\n', "guards.redis_url.*environment variable"),
        ('[guards.profiles.default]\nshout = true\n', "guards.profiles.default.shout: unknown key; allowed keys here: deny"),
    ],
)
def test_guard_settings_errors_name_the_key_and_the_fix(tmp_path, toml, message):
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_settings(cfg, env={})


def test_default_toml_documents_every_scalpel_key_with_its_default():
    text = DEFAULT_TOML.read_text()
    raw = tomllib.loads(text)
    # api_key is shown commented out (it names a variable only stdio with require_keys needs).
    assert set(raw["scalpel"]) | {"api_key"} == _documented_keys(ScalpelSettings)
    assert '# api_key = "env::' in text
    assert msgspec.convert(raw["scalpel"], ScalpelSettings) == ScalpelSettings()
    settings = load_settings(env={})
    assert settings.scalpel == ScalpelSettings()
    task = settings.tasks["scalpel"]
    assert task.route[-1] == "smollm2-135m" and task.cacheable is False and task.pack == ""


def test_surr_scalpel_variables_set_the_scalpel_keys(tmp_path):
    env = {
        "SURR_SCALPEL_ENABLED": "false",
        "SURR_SCALPEL_ENDPOINT": "http://127.0.0.1:8111/v1/chat/completions",
        "SURR_SCALPEL_MODEL": "2024",  # a model name stays text, even when it looks like a number
        "SURR_SCALPEL_MAX_TOKENS": "256",
        "SURR_SCALPEL_TIMEOUT_MS": "5000",
        "SEEKGATE_SCALPEL_WORKSPACE": str(tmp_path),
    }
    scalpel = load_settings(env=env).scalpel
    assert scalpel == ScalpelSettings(
        enabled=False,
        endpoint=env["SURR_SCALPEL_ENDPOINT"],
        model="2024",
        max_tokens=256,
        timeout_ms=5000,
        workspace=str(tmp_path),
    )


def test_scalpel_layers_file_then_surr_then_seekgate_then_cli(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[scalpel]\nmax_tokens = 100\ntimeout_ms = 1000\nmax_steps = 3\n")
    env = {"SURR_SCALPEL_MAX_TOKENS": "200", "SURR_SCALPEL_TIMEOUT_MS": "2000", "SEEKGATE_SCALPEL__TIMEOUT_MS": "3000"}
    scalpel = load_settings(cfg, env=env, overrides={"scalpel.max_steps": 4}).scalpel
    assert (scalpel.max_tokens, scalpel.timeout_ms, scalpel.max_steps) == (200, 3000, 4)


@pytest.mark.parametrize(
    ("env", "toml", "message"),
    [
        ({"SURR_SCALPEL_MAX_TOKENS": "lots"}, "", "variable SURR_SCALPEL_MAX_TOKENS: key scalpel.max_tokens: Expected `int`"),
        ({"SURR_SCALPEL_TIMEOUT_MS": "0"}, "", "variable SURR_SCALPEL_TIMEOUT_MS: key scalpel.timeout_ms: must be at least 1"),
        ({"SURR_SCALPEL_ENABLED": "maybe"}, "", "variable SURR_SCALPEL_ENABLED: key scalpel.enabled: Expected `bool`"),
        ({"SURR_SCALPEL_ENDPOINT": "localhost:8111"}, "", "SURR_SCALPEL_ENDPOINT: key scalpel.endpoint: 'localhost:8111' is not"),
        ({"SURR_SCALPEL_MODEL": "ghost"}, "", "SURR_SCALPEL_MODEL: key scalpel.model: unknown model 'ghost'"),
        ({}, '[scalpel]\ntask = "ghost"\n', "c.toml: key scalpel.task: unknown task 'ghost'"),
        ({}, "[scalpel]\nmax_steps = 0\n", "c.toml: key scalpel.max_steps: must be at least 1"),
        ({}, '[scalpel]\napi_key = "sgk_123"\n', "c.toml: key scalpel.api_key: a reference to an environment variable"),
        ({}, "[scalpel]\nworkspce = 1\n", "scalpel.workspce: unknown key; allowed keys here: api_key, enabled, endpoint"),
        ({}, '[scalpel]\nendpoint_tool_mode = "magic"\n', "allowed values: native, grammar, json_schema"),
    ],
)
def test_scalpel_settings_errors_name_the_layer_the_key_and_the_fix(tmp_path, env, toml, message):
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, env=env)
    assert message in str(info.value)


def test_with_an_endpoint_the_scalpel_model_is_that_servers_name():
    env = {"SURR_SCALPEL_ENDPOINT": "http://127.0.0.1:8111/v1", "SURR_SCALPEL_MODEL": "deepseek-coder"}
    assert load_settings(env=env).scalpel.model == "deepseek-coder"
