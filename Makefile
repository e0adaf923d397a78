# imagesync: `make run` starts the portal, `make test` runs the whole suite.
SHELL := /bin/sh
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# The suite runs against real PostgreSQL and Redis on loopback (override to point elsewhere).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/imagesync
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test venv deps test-deps check clean

# A venv made by an interpreter older than 3.12 (or a broken one) is made again.
$(VENV)/.python-ok:
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null || { \
	  python=$$(scripts/find-python) || exit 1; \
	  echo "Creating $(VENV) with $$python"; rm -rf $(VENV); "$$python" -m venv $(VENV); }
	@$(PY) -m pip install -q --upgrade pip
	@touch $@

$(VENV)/.deps: requirements.txt pyproject.toml $(VENV)/.python-ok
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

$(VENV)/.test-deps: requirements.txt requirements-dev.txt pyproject.toml $(VENV)/.python-ok
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	@touch $@ $(VENV)/.deps

venv: $(VENV)/.python-ok
deps: $(VENV)/.deps
test-deps: $(VENV)/.test-deps

run: deps
	$(PY) manage.py migrate --no-input
	$(PY) manage.py ensure_admin
	PORT=$(PORT) $(PY) scripts/run.py

test: test-deps
	scripts/ensure-packages
	scripts/ensure-services
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest $(PYTEST_ARGS)

check: test-deps
	$(PY) manage.py check

clean:
	rm -rf $(VENV) .pytest_cache
