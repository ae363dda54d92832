# Home Security Intelligence: one entry point for setting up, testing and running everything.
# `make test` and `make demo` create the virtual environments they need from scratch when missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PY311 ?= $(shell scripts/find-python 3.11)
PY313 ?= $(shell scripts/find-python 3.13)
VENV_SERVER := .venv/server
VENV_HA := .venv/ha
# The newest Home Assistant that installs on Python 3.13.0: tests/hsi runs on both.
VENV_HA_2026 := .venv/ha-2026
SERVER_PY := $(CURDIR)/$(VENV_SERVER)/bin/python
HA_PY := $(CURDIR)/$(VENV_HA)/bin/python
HA_2026_PY := $(CURDIR)/$(VENV_HA_2026)/bin/python
SERVER_STAMP := $(VENV_SERVER)/.installed
HA_STAMP := $(VENV_HA)/.installed
HA_DEMO_STAMP := $(VENV_HA)/.demo-installed
HA_2026_STAMP := $(VENV_HA_2026)/.installed
# llama-cpp-python builds from source: portable AVX2 binary, both cores (cached as a wheel).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2
export PIP_DISABLE_PIP_VERSION_CHECK := 1
PORT ?= 8090
HA_PORT ?= 8123

.PHONY: scenes help venv venv-server venv-ha venv-ha-2026 venv-ha-demo test test-client test-server test-ha test-ha-2026 test-e2e test-browser lint demo demo-check demo-screenshot bench load tiny-models docs clean \
	addon-check addon-wheels addon-constraints

help:
	@echo "make test    create the venvs if missing, lint, run every test suite (tests/hsi on HA 2025.4 and 2026.2)"
	@echo "make demo    the AI server (scripted profile, port $(PORT)) + Home Assistant on http://127.0.0.1:$(HA_PORT)"
	@echo "             (a scripted demo scene analysed by HSI; login demo / demo-password); Ctrl-C stops both"
	@echo "make demo-check  the same, set up from scratch, one analysis, exit 0 (what the e2e test runs)"
	@echo "make scenes  replay the scenes in tests/scenes (SCENES=/abs/dir for another folder)"
	@echo "make bench   run the benchmarks in bench/ (figures go to docs/benchmarks.md)"
	@echo "make load    simulated cameras against a real server (LOAD_ARGS=\"--soak 600\", \"--knee\")"
	@echo "make lint    ruff + mypy + hadolint"
	@echo "make addon-check  build the add-on image as Supervisor does (podman, root), run it, SIGTERM it;"
	@echo "             the same for docker-compose.yml's image (docs/development.md)"
	@echo "make docs    regenerate the README settings table from the code"

venv: venv-server venv-ha venv-ha-2026
venv-server: $(SERVER_STAMP)
venv-ha: $(HA_STAMP)
venv-ha-2026: $(HA_2026_STAMP)
venv-ha-demo: $(HA_DEMO_STAMP)

$(SERVER_STAMP): pyproject.toml constraints/server.txt client/pyproject.toml
	@test -n "$(PY311)" || { echo "python3.11 not found"; exit 1; }
	test -x $(VENV_SERVER)/bin/python || $(PY311) -m venv $(VENV_SERVER)
	$(VENV_SERVER)/bin/pip install -q --upgrade pip
	$(VENV_SERVER)/bin/pip install -q -c constraints/server.txt -e ./client -e '.[dev,bench]'
	touch $@

$(HA_STAMP): requirements/ha-test.txt constraints/ha.txt client/pyproject.toml
	@test -n "$(PY313)" || { echo "python3.13 not found (needed by Home Assistant)"; exit 1; }
	test -x $(VENV_HA)/bin/python || $(PY313) -m venv $(VENV_HA)
	$(VENV_HA)/bin/pip install -q --upgrade pip
	$(VENV_HA)/bin/pip install -q -c constraints/ha.txt -r requirements/ha-test.txt -e ./client
	touch $@

# HA 2026.2.3 declares Python >= 3.13.2; it runs on 3.13.0 (measured), hence --ignore-requires-python.
$(HA_2026_STAMP): requirements/ha-2026-test.txt constraints/ha-2026.txt client/pyproject.toml
	@test -n "$(PY313)" || { echo "python3.13 not found (needed by Home Assistant)"; exit 1; }
	test -x $(VENV_HA_2026)/bin/python || $(PY313) -m venv $(VENV_HA_2026)
	$(VENV_HA_2026)/bin/pip install -q --upgrade pip
	$(VENV_HA_2026)/bin/pip install -q --ignore-requires-python -c constraints/ha-2026.txt \
		-r requirements/ha-2026-test.txt -e ./client
	touch $@

# Only the demo and its e2e test need HA's frontend package (HA will not start without it).
$(HA_DEMO_STAMP): $(HA_STAMP) requirements/ha-demo.txt
	$(VENV_HA)/bin/pip install -q -c constraints/ha.txt -r requirements/ha-demo.txt
	touch $@

lint: $(SERVER_STAMP)
	$(VENV_SERVER)/bin/ruff check .
	$(VENV_SERVER)/bin/ruff format --check .
	$(VENV_SERVER)/bin/mypy ai_server bench scripts/demo.py scripts/check_versions.py \
		scripts/addon_check.py addon/healthcheck.py
	$(VENV_SERVER)/bin/hadolint addon/Dockerfile
	cd client && $(CURDIR)/$(VENV_SERVER)/bin/mypy

# The client library's own suite (no Home Assistant, no torch).
test-client: $(SERVER_STAMP)
	cd client && $(SERVER_PY) -m pytest -q

# tests/ai_server includes test_load_bench.py: the CI-sized load run of bench/load.py
# (4 cameras x 1 fps for 30 s against a real tiny-profile server; `make load` for longer runs).
test-server: $(SERVER_STAMP)
	$(SERVER_PY) -m pytest -q tests/ai_server tests/scenes

# Replay the scenes of tests/scenes (SCENES=/abs/dir: another folder) through a real Home
# Assistant and the real server (scripted profile); prints a table, writes scenes-report.json.
# `make test` replays tests/scenes as part of tests/hsi.
scenes: $(HA_STAMP) $(SERVER_STAMP)
	HSI_SCENES=$(SCENES) HSI_SERVER_PYTHON=$(SERVER_PY) $(HA_PY) -m pytest -q -c tests/hsi/pytest.ini tests/hsi/test_scenes.py

# tests/hsi on the oldest supported Home Assistant (2025.4.4, hacs.json's minimum) ...
test-ha: $(HA_STAMP) $(SERVER_STAMP)
	@if [ -d tests/hsi ]; then HSI_SERVER_PYTHON=$(SERVER_PY) $(HA_PY) -m pytest -q -c tests/hsi/pytest.ini tests/hsi; \
	else echo "no integration tests yet"; fi

# ... and on the newest that installs here (2026.2.3).
test-ha-2026: $(HA_2026_STAMP) $(SERVER_STAMP)
	@if [ -d tests/hsi ]; then HSI_SERVER_PYTHON=$(SERVER_PY) $(HA_2026_PY) -m pytest -q -c tests/hsi/pytest.ini tests/hsi; \
	else echo "no integration tests yet"; fi

test-e2e: $(SERVER_STAMP) $(HA_DEMO_STAMP)
	HSI_HA_PYTHON=$(HA_PY) $(SERVER_PY) -m pytest -q tests/e2e

test: lint test-client test-server test-ha test-ha-2026 test-e2e test-browser

# tests/browser: the real frontend in Debian's chromium (playwright-core from npm) against the
# demo stack (scripts/demo.py on free ports); screenshots and logs in tests/browser/artefacts/.
test-browser: $(SERVER_STAMP) $(HA_DEMO_STAMP) tests/browser/node_modules/.package-lock.json
	@test -x /usr/bin/chromium || { echo "chromium missing: apt-get update && apt-get install -y chromium"; exit 1; }
	cd tests/browser && HSI_SERVER_PYTHON=$(SERVER_PY) HSI_HA_PYTHON=$(HA_PY) npm test

tests/browser/node_modules/.package-lock.json: tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund

demo: $(SERVER_STAMP) $(HA_DEMO_STAMP)
	$(SERVER_PY) scripts/demo.py --live-scene --server-port $(PORT) --ha-port $(HA_PORT) --ha-python $(HA_PY)

# Any free ports and its own folder, so it also runs beside a `make demo`.
demo-check: $(SERVER_STAMP) $(HA_DEMO_STAMP)
	$(SERVER_PY) scripts/demo.py --check --live-scene --server-port 0 --ha-port 0 --dir .demo/check --ha-python $(HA_PY)

# docs/img/demo-device.png: the demo's camera device page, logged in, in Debian's chromium
# (apt-get install -y chromium) driven by playwright-core (npm).
demo-screenshot: $(SERVER_STAMP) $(HA_DEMO_STAMP) scripts/screenshot/node_modules/.package-lock.json
	@test -x /usr/bin/chromium || { echo "chromium missing: apt-get update && apt-get install -y chromium"; exit 1; }
	node scripts/screenshot/demo-device.mjs docs/img/demo-device.png

scripts/screenshot/node_modules/.package-lock.json: scripts/screenshot/package.json scripts/screenshot/package-lock.json
	cd scripts/screenshot && npm ci --no-audit --no-fund

tiny-models: $(SERVER_STAMP)
	$(SERVER_PY) -m ai_server make-tiny-models .cache/tiny-models

bench: $(SERVER_STAMP)
	$(SERVER_PY) bench/detect.py --model tiny

# Simulated cameras against a real server on loopback (docs/reliability.md), e.g.
# make load LOAD_ARGS="--soak 600"   or   make load LOAD_ARGS="--knee --detector r18vd"
load: $(SERVER_STAMP)
	$(SERVER_PY) bench/load.py $(LOAD_ARGS)

docs: $(SERVER_STAMP)
	$(SERVER_PY) scripts/update_readme.py

# The add-on image (docs/development.md "The add-on image"). addon-check needs root and podman
# (installed when missing); not part of `make test`.
addon-check: $(SERVER_STAMP)
	$(SERVER_PY) scripts/addon_check.py

# addon/wheels/: wheels of this repository's client and server (+ llama-cpp-python's built wheel).
addon-wheels: $(SERVER_STAMP)
	$(SERVER_PY) scripts/addon_check.py wheels

# addon/constraints.txt from constraints/server.txt (the image's pins; a test keeps them equal).
addon-constraints: $(SERVER_STAMP)
	$(SERVER_PY) scripts/addon_check.py constraints

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache .cache .demo
