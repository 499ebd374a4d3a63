# `make serve` and `make test` do all set-up on a fresh clone: a .venv with pinned dependencies
# (uv.lock), built with uv. The first install compiles llama.cpp from source (5-10 minutes on
# 2 cores); uv caches the built wheel, so later installs on the same machine take seconds.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed

.PHONY: serve test install bench clean

serve: $(STAMP)
	$(VENV)/bin/seekgate serve $(ARGS)

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

install: $(STAMP)

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/overhead.py
	$(VENV)/bin/python benchmarks/engine.py

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

# --inexact keeps uv and pip in the venv (they are not project dependencies).
$(STAMP): pyproject.toml uv.lock | $(UV)
	@echo "Installing dependencies from uv.lock. The first install builds llama.cpp from source:"
	@echo "about 5-10 minutes on 2 cores, with progress below; later installs reuse the cached wheel."
	$(UV) sync --locked --inexact --python $(VENV)/bin/python -v 2>&1 | scripts/install-progress
	@touch $@

clean:
	rm -rf $(VENV) .pytest_cache
