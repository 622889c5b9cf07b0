# Every target installs what it needs: `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup system-packages python binaries assets demo test test-fast lint clean

setup: system-packages python binaries assets

system-packages:
	@command -v espeak-ng >/dev/null && command -v sox >/dev/null && command -v chromium >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng sox chromium >/dev/null)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[operator,runtime,dev]'
	touch $(STAMP)

python: $(STAMP)

binaries:
	bash devkit/build-binaries.sh

assets: python system-packages
	$(VENV)/bin/whisper-devkit models
	$(VENV)/bin/whisper-devkit speech

demo: setup
	$(VENV)/bin/whisper-devkit demo

test: setup
	$(VENV)/bin/lint-imports
	$(VENV)/bin/python -m pytest -ra

test-fast: python
	$(VENV)/bin/python -m pytest -ra -m "not e2e and not model"

clean:
	rm -rf $(VENV) .pytest_cache

# Copy crds/ into the Helm chart after changing a CRD (tests/chart fails while they differ).
.PHONY: sync-crds
sync-crds:
	bash charts/whisper-operator/sync-crds.sh
