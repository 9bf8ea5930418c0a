# Two commands for a fresh machine:
#   make demo   set everything up and start the demo site with a worker
#   make test   set everything up and run the checks and every test suite
#
# torch is installed first and explicitly (TORCH_SPEC, a CPU wheel) so that no
# other package can pull a multi-gigabyte CUDA build in by accident.

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

# Django 6 needs Python 3.12+, for which no CPU torch wheel is at hand: that
# suite runs everything but the transformers backend (see README).
PYTHON_NEW ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12.*/bin/python3.12) python3.12)
DJANGO_NEW ?= Django>=6.0,<6.2
VENV_NEW ?= .venv-django6

DATABASE_URL_PG ?= postgres://postgres@127.0.0.1:5432/nsfw_moderation
REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: install demo test test-quick lint pytest pytest-postgres-redis pytest-django6 \
	browser services benchmark clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[transformers,opennsfw,blocklist,test,dev]" playwright
	touch $@

$(VENV_NEW)/.installed: pyproject.toml
	$(PYTHON_NEW) -m venv $(VENV_NEW)
	$(VENV_NEW)/bin/pip install --quiet --upgrade pip
	$(VENV_NEW)/bin/pip install --quiet "$(DJANGO_NEW)" -e ".[opennsfw,blocklist,test]" playwright
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python demo_site/run.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python manage.py makemigrations --check --dry-run --settings=tests.settings

# Browser tests drive Debian's chromium (never a downloaded browser build).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

# PostgreSQL and Redis run on the machine; start them if they are down.
services:
	@pg_isready -q -h 127.0.0.1 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 -::1 \
		--port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
	@for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 && redis-cli ping >/dev/null 2>&1 && exit 0; sleep 1; done; \
		echo "PostgreSQL or Redis did not start" >&2; exit 1

# SQLite and django-q2's ORM broker: the embedded default.
pytest: install browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The same suite on PostgreSQL, every worker test on the Redis broker.
pytest-postgres-redis: install browser services
	DATABASE_URL=$(DATABASE_URL_PG) NSFW_TEST_BROKER=redis REDIS_URL=$(REDIS_URL) \
		NSFW_TEST_CLUSTER_NAME=nsfw-tests-$$$$ $(BIN)/python -m pytest $(PYTEST_ARGS)

# Django 6 on Python 3.12, without torch: workers use the opennsfw backend.
pytest-django6: browser
	$(MAKE) $(VENV_NEW)/.installed
	$(VENV_NEW)/bin/python -m pytest $(PYTEST_ARGS)

test-quick: lint pytest

test: lint pytest pytest-postgres-redis pytest-django6

# Throughput, agreement, save() cost, latency and memory; writes docs/benchmarks.md.
benchmark: install
	$(BIN)/python benchmarks/run.py $(ARGS)

clean:
	rm -rf $(VENV) $(VENV_NEW) tests/.tiny-vit tests/.media tests/.db.sqlite3* tests/.test-db.sqlite3* tests/.moderation-db.sqlite3* tests/.test-moderation-db.sqlite3*
