"""Build the llama-cpp-python wheel once per machine and keep it in a wheelhouse.

llama-cpp-python ships only as a source distribution that compiles llama.cpp (5-10 minutes on
2 cores). uv caches built wheels, but it revalidates registry sdists, and where the registry
answers revalidation with a fresh copy uv builds again for every new virtualenv. So the wheel
lives in a wheelhouse keyed by the version locked in uv.lock and the build flags in
pyproject.toml; the sdist is checked against uv.lock's hash before it is built.

Usage: python scripts/llama_wheel.py WHEELHOUSE PYTHON
Prints the wheel's path on stdout; progress goes to stderr.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "llama-cpp-python"


def locked_sdist() -> tuple[str, str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    for package in lock["package"]:
        if package["name"] == PACKAGE:
            return package["version"], package["sdist"]["hash"].removeprefix("sha256:")
    sys.exit(f"{PACKAGE} is not in uv.lock")


def build_flags() -> dict[str, str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return pyproject["tool"]["uv"]["config-settings-package"][PACKAGE]


def progress(lines: object) -> None:
    """Show one line per 10 compile steps instead of the compiler log."""
    for line in lines:  # type: ignore[attr-defined]
        text = line.rstrip()
        if text.startswith("[") and "/" in text.split("]")[0]:
            done, total = text[1:].split("]")[0].split("/")
            if done.isdigit() and total.isdigit() and (int(done) % 10 == 0 or done == total):
                print(f"  building llama.cpp: step {done} of {total}", file=sys.stderr, flush=True)
        elif not text.startswith("DEBUG") and ("error:" in text or text.startswith(("error", "×"))):
            print(text, file=sys.stderr, flush=True)


def main() -> None:
    wheelhouse, python = Path(sys.argv[1]).expanduser(), sys.argv[2]
    version, sha = locked_sdist()
    flags = build_flags()
    key = hashlib.sha256(json.dumps([version, sha, flags], sort_keys=True).encode()).hexdigest()[:16]
    target = wheelhouse / f"{PACKAGE}-{version}-{key}"
    wheels = sorted(target.glob("*.whl"))
    if wheels:
        print(wheels[-1])
        return
    print(f"Building {PACKAGE} {version} (llama.cpp) from source: about 5-10 minutes on 2 cores, once per machine.", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        requirement = Path(tmp) / "requirement.txt"
        requirement.write_text(f"{PACKAGE}=={version} --hash=sha256:{sha}\n")
        subprocess.run(
            [python, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps", "--no-binary", ":all:", "--require-hashes",
             "-r", str(requirement), "-d", tmp],
            check=True,
        )  # fmt: skip
        sdist = next(Path(tmp).glob("*.tar.gz"))
        uv = Path(python).with_name("uv")
        settings = [arg for k, v in flags.items() for arg in ("--config-setting", f"{k}={v}")]
        build = subprocess.Popen(
            [str(uv), "build", "--wheel", "-v", "--python", python, "--out-dir", str(Path(tmp) / "out"), *settings, str(sdist)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert build.stdout is not None
        progress(build.stdout)
        if build.wait() != 0:
            sys.exit(f"building {PACKAGE} failed (compiler errors above); `uv build -v {sdist.name}` shows the whole log")
        target.mkdir(parents=True, exist_ok=True)
        built = next((Path(tmp) / "out").glob("*.whl"))
        final = target / built.name
        built.replace(final) if built.stat().st_dev == target.stat().st_dev else final.write_bytes(built.read_bytes())
    print(final)


if __name__ == "__main__":
    main()
