"""Where a model's weights live: a file, a file shipped in a Python package, or a hub download."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from seekgate.settings import ModelSpec

__all__ = ["describe_source", "download", "local_weights"]

PACKAGE_PREFIX = "package:"


def describe_source(spec: ModelSpec) -> str:
    if spec.path:
        return spec.path
    if spec.hf_repo:
        return f"hf:{spec.hf_repo}/{spec.hf_file}"
    return spec.upstream_model or ""


def local_weights(spec: ModelSpec, data_dir: Path) -> Path | None:
    """The weights file if it is on this machine; never touches the network."""
    if spec.path:
        path = _package_file(spec.path) if spec.path.startswith(PACKAGE_PREFIX) else Path(spec.path).expanduser()
        return path if path is not None and path.is_file() else None
    if spec.hf_repo and spec.hf_file:
        pulled = _pull_target(spec, data_dir)
        if pulled.is_file():
            return pulled
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(spec.hf_repo, spec.hf_file)
        return Path(cached) if isinstance(cached, str) else None
    return None


def download(spec: ModelSpec, data_dir: Path) -> Path:
    """Fetch hf_repo/hf_file into data_dir/models with a progress bar. A dropped connection is
    resumed within the run; a failed run leaves no partial file (huggingface_hub deletes it)."""
    if not (spec.hf_repo and spec.hf_file):
        raise ValueError("this model has no hf_repo/hf_file to download")
    from huggingface_hub import hf_hub_download

    # local_dir is the repo's folder, not the file's: hf_file may have folders of its own
    # ("Q4_K_M/model.gguf"), which huggingface_hub recreates under local_dir.
    repo_dir = _repo_dir(spec.hf_repo, data_dir)
    repo_dir.mkdir(parents=True, exist_ok=True)
    return Path(hf_hub_download(repo_id=spec.hf_repo, filename=spec.hf_file, local_dir=repo_dir))


def _pull_target(spec: ModelSpec, data_dir: Path) -> Path:
    assert spec.hf_repo and spec.hf_file
    return _repo_dir(spec.hf_repo, data_dir) / spec.hf_file


def _repo_dir(hf_repo: str, data_dir: Path) -> Path:
    return data_dir / "models" / hf_repo.replace("/", "--")


def _package_file(ref: str) -> Path | None:
    package, _, name = ref.removeprefix(PACKAGE_PREFIX).partition("/")
    try:
        return Path(str(resources.files(package).joinpath(name)))
    except ModuleNotFoundError:
        return None
