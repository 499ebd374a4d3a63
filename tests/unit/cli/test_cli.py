import json
import subprocess
import sys

from seekgate.cli.main import main


def test_models_lists_aliases_backends_and_weights(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SEEKGATE_SERVER__DATA_DIR", str(tmp_path))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line and not line.startswith(("alias", "*  ", "\n"))}
    assert "present" in lines["*smollm2-135m"] and "llamacpp" in lines["*smollm2-135m"]
    assert "missing" in lines["ds-coder-v2-lite"] and "DeepSeek-Coder-V2-Lite-Instruct-Q4_K_M.gguf" in lines["ds-coder-v2-lite"]


def test_models_json_marks_the_default_and_finds_pulled_weights(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SEEKGATE_SERVER__DATA_DIR", str(tmp_path))
    pulled = tmp_path / "models" / "TheBloke--deepseek-coder-6.7B-instruct-GGUF" / "deepseek-coder-6.7b-instruct.Q4_K_M.gguf"
    pulled.parent.mkdir(parents=True)
    pulled.write_bytes(b"GGUF")
    assert main(["models", "--json"]) == 0
    rows = {r["alias"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["smollm2-135m"]["default"] is True
    assert rows["ds-coder-6.7b"]["weights"] == "present" and rows["ds-coder-6.7b"]["path"] == str(pulled)
    assert rows["fake-echo"]["weights"] == "server"


def test_pull_of_a_bundled_model_has_nothing_to_do(capsys):
    assert main(["pull", "smollm2-135m"]) == 0
    assert "already present" in capsys.readouterr().out


def test_pull_of_an_unknown_alias_is_a_clear_error(capsys):
    assert main(["pull", "gpt-9"]) == 2
    assert "unknown model 'gpt-9'" in capsys.readouterr().err


def test_bad_configuration_stops_start_up_with_exit_code_2(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[server]\nport = 'eighty'\n")
    result = subprocess.run(
        [sys.executable, "-m", "seekgate.cli.main", "--config", str(cfg), "serve"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert str(cfg) in result.stderr and "server.port" in result.stderr


def test_set_flag_needs_key_and_value(capsys):
    assert main(["--set", "server.port", "models"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
