# `make serve` and `make test` do all set-up on a fresh clone: a .venv with pinned dependencies
# (uv.lock), built with uv. The first install compiles llama.cpp from source (5-10 minutes on
# 2 cores) into a wheelhouse, so later installs on the same machine take seconds.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed
WHEELHOUSE ?= $(HOME)/.cache/seekgate/wheels

.PHONY: serve test install bench clean

serve: $(STAMP)
	$(VENV)/bin/seekgate serve $(ARGS)

test: $(STAMP)
	bash scripts/system_deps.sh
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

install: $(STAMP)

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/overhead.py
	$(VENV)/bin/python benchmarks/engine.py

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

# llama-cpp-python comes from a wheelhouse built once per machine (scripts/llama_wheel.py says
# why); everything else from uv.lock. --inexact keeps uv, pip and that wheel in the venv.
$(STAMP): pyproject.toml uv.lock scripts/llama_wheel.py | $(UV)
	@echo "Installing dependencies from uv.lock."
	$(UV) sync --locked --inexact --no-install-package llama-cpp-python --python $(VENV)/bin/python
	wheel=$$($(VENV)/bin/python scripts/llama_wheel.py "$(WHEELHOUSE)" $(VENV)/bin/python) && \
	  $(UV) pip install --no-deps --python $(VENV)/bin/python "$$wheel"
	@touch $@

clean:
	rm -rf $(VENV) .pytest_cache
