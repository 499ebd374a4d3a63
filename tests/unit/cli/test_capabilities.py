import json

from openpyxl import load_workbook

from seekgate.cli.capabilities import COLUMNS
from seekgate.cli.main import main


def test_matrix_is_generated_from_the_live_configuration(capsys, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[tasks.docs-qa]\npack = "rag-doc@v1"\nroute = ["fake-echo"]\nretrieval = "handbook"\nslo_p95_ms = 1500\ncacheable = true\n')
    assert main(["--config", str(cfg), "capabilities", "--json"]) == 0
    rows = {r["task"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert {"chat", "editor", "refactor", "tests", "rag-code", "rag-doc", "ci", "scalpel", "docs-qa"} == set(rows)
    assert rows["docs-qa"]["route"] == "fake-echo" and rows["docs-qa"]["backends"] == "fake (fake)"
    assert rows["docs-qa"]["retrieval"] == "handbook" and rows["docs-qa"]["SLO p95 ms"] == 1500 and rows["docs-qa"]["cacheable"] is True
    assert rows["editor"]["route"] == "ds-coder-6.7b > smollm2-135m"


def test_xlsx_workbook_holds_the_same_matrix(capsys, tmp_path):
    out = tmp_path / "capabilities.xlsx"
    assert main(["capabilities", "--xlsx", str(out)]) == 0
    printed = capsys.readouterr().out
    sheet = load_workbook(out).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == COLUMNS
    tasks = [r[0] for r in rows[1:]]
    assert tasks == ["chat", "editor", "refactor", "tests", "rag-code", "rag-doc", "ci", "scalpel"]
    assert all(task in printed for task in tasks)
    editor = dict(zip(COLUMNS, rows[2]))
    assert editor["pack"] == "editor@v1" and editor["SLO p95 ms"] == 2000 and editor["cacheable"] is True
