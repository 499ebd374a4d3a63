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
    """Fetch hf_repo/hf_file into data_dir/models with a progress bar; resumes partial files."""
    if not (spec.hf_repo and spec.hf_file):
        raise ValueError("this model has no hf_repo/hf_file to download")
    from huggingface_hub import hf_hub_download

    target = _pull_target(spec, data_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(hf_hub_download(repo_id=spec.hf_repo, filename=spec.hf_file, local_dir=target.parent))


def _pull_target(spec: ModelSpec, data_dir: Path) -> Path:
    assert spec.hf_repo and spec.hf_file
    return data_dir / "models" / spec.hf_repo.replace("/", "--") / spec.hf_file


def _package_file(ref: str) -> Path | None:
    package, _, name = ref.removeprefix(PACKAGE_PREFIX).partition("/")
    try:
        return Path(str(resources.files(package).joinpath(name)))
    except ModuleNotFoundError:
        return None
