# hutch — the two commands a fresh machine needs: `make run` and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
PYTEST := $(PY) -m pytest

.PHONY: setup run test test-unit test-v2 bench clean

setup:
	@bash scripts/setup.sh

run: setup
	$(VENV)/bin/hutch run --rm busybox echo "hello from a hutch container"

test: setup
	$(PYTEST) -q tests
	@bash scripts/test-v2.sh

test-unit: setup
	$(PYTEST) -q tests/unit

test-v2: setup
	@bash scripts/test-v2.sh

bench: setup
	$(PY) -m bench

clean:
	rm -rf $(VENV) build src/*.egg-info
