"""The placeholder key: the same after a restart, shared when configured, private on disk."""

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from seekgate.guards.vault import Vault, vault_key


def test_the_key_is_made_once_kept_private_and_read_back_after_a_restart(tmp_path: Path):
    path = tmp_path / "data" / "vault.key"
    first = vault_key(None, path)
    assert len(first) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert vault_key(None, path) == first  # the next start reads it
    assert Vault(first).placeholder("ghp_x", "GITHUB_TOKEN") == Vault(vault_key(None, path)).placeholder("ghp_x", "GITHUB_TOKEN")
    assert list(path.parent.iterdir()) == [path]  # no drafts left behind


def test_a_configured_secret_gives_every_replica_the_same_key(tmp_path: Path):
    a, b = vault_key("shared secret", tmp_path / "a" / "vault.key"), vault_key("shared secret", tmp_path / "b" / "vault.key")
    assert a == b != vault_key("another", tmp_path / "c" / "vault.key") and not (tmp_path / "a").exists()


def test_workers_starting_together_agree_on_one_key(tmp_path: Path):
    path = tmp_path / "vault.key"
    code = "import sys; from pathlib import Path; from seekgate.guards.vault import vault_key; print(vault_key(None, Path(sys.argv[1])).hex())"
    workers = [subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True) for _ in range(6)]
    keys = {w.communicate()[0].strip() for w in workers}
    assert len(keys) == 1 and bytes.fromhex(keys.pop()) == path.read_bytes()


def test_a_damaged_key_file_is_named(tmp_path: Path):
    (tmp_path / "vault.key").write_bytes(b"short")
    with pytest.raises(ValueError, match="vault.key is not a vault key"):
        vault_key(None, tmp_path / "vault.key")
