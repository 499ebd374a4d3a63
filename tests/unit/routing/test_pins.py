import pytest

from seekgate import errors
from seekgate.routing.pins import Pins, split_alias

ALIASES = ["ds-coder-v2@2024-06-17", "ds-coder-v2@2025-01-10", "smollm2-135m", "coder@v2", "coder@v10"]


def test_split_alias():
    assert split_alias("ds-coder-v2@2024-06-17") == ("ds-coder-v2", "2024-06-17")
    assert split_alias("smollm2-135m") == ("smollm2-135m", None)


def test_families_pin_their_newest_version_by_default(tmp_path):
    pins = Pins(ALIASES, tmp_path / "pins.json")
    assert pins.resolve("ds-coder-v2") == "ds-coder-v2@2025-01-10"
    assert pins.resolve("smollm2-135m") is None and pins.resolve("ds-coder-v2@2024-06-17") is None


def test_pin_rollback_and_history_persist(tmp_path):
    path = tmp_path / "pins.json"
    pins = Pins(ALIASES, path)
    assert pins.pin("ds-coder-v2", "2024-06-17") == ("2025-01-10", "2024-06-17")
    again = Pins(ALIASES, path)  # a restart
    assert again.current("ds-coder-v2") == "2024-06-17"
    assert again.rollback("ds-coder-v2") == ("2024-06-17", "2025-01-10")
    assert Pins(ALIASES, path).current("ds-coder-v2") == "2025-01-10"
    with pytest.raises(errors.InvalidRequest, match="no earlier pin"):
        again.rollback("ds-coder-v2")


def test_bad_pins_are_clear_errors(tmp_path):
    pins = Pins(ALIASES, tmp_path / "pins.json")
    with pytest.raises(errors.InvalidRequest, match="2024-06-17, 2025-01-10"):
        pins.pin("ds-coder-v2", "1999-01-01")
    with pytest.raises(errors.NotFound, match="ds-coder-v2"):
        pins.pin("ghost", "1")


def test_saved_pins_for_versions_no_longer_configured_are_ignored(tmp_path):
    path = tmp_path / "pins.json"
    path.write_text('{"ds-coder-v2": {"current": "2023-01-01", "history": []}}')
    assert Pins(ALIASES, path).current("ds-coder-v2") == "2025-01-10"
    path.write_text("{not json")
    assert Pins(ALIASES, path).current("ds-coder-v2") == "2025-01-10"
