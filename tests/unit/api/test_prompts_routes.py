from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from seekgate.api.prompts import routes
from seekgate.prompts.packs import PackStore, shipped_packs_dir


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    (tmp_path / "broken@v1.md").write_text("---\nname: broken\n")
    return TestClient(Starlette(routes=routes(PackStore([shipped_packs_dir(), tmp_path], check_interval=0))))


def test_list_gives_every_pack_and_the_files_that_failed(client: TestClient, tmp_path: Path):
    body = client.get("/v1/prompts").json()
    assert body["object"] == "list"
    assert [p["ref"] for p in body["data"]] == ["chat@v1", "ci@v1", "ci@v2", "editor@v1", "rag-code@v1", "rag-doc@v1", "refactor@v1", "tests@v1"]
    editor = next(p for p in body["data"] if p["ref"] == "editor@v1")
    assert set(editor) == {"ref", "name", "version", "description", "task_types", "output_contract", "path"}
    assert (editor["name"], editor["version"], editor["task_types"]) == ("editor", 1, ["editor"])
    assert [p.split(": ")[0] for p in body["problems"]] == [f"{tmp_path / 'broken@v1.md'}:1"]


def test_one_pack_includes_its_body_and_a_bare_name_is_its_latest(client: TestClient):
    body = client.get("/v1/prompts/tests").json()
    assert body["ref"] == "tests@v1" and "edge cases" in body["body"]
    assert client.get("/v1/prompts/tests@v1").json() == body


def test_an_unknown_pack_is_a_404_in_openai_shape(client: TestClient):
    resp = client.get("/v1/prompts/editor@v9")
    assert resp.status_code == 404
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "editor@v1" in error["message"] and error["param"] == "ref" and error["code"] == "unknown_prompt_pack"
