# Two commands for a fresh machine:
#   make demo   set everything up and start the demo site with a worker
#   make test   set everything up and run the checks and the test suite
#
# torch is installed first and explicitly (CPU wheel, TORCH_SPEC) so that no
# other package can pull a multi-gigabyte CUDA build in by accident.

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: install demo test lint pytest browser services clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[transformers,opennsfw,test,dev]"
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

pytest: install browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: install lint pytest

clean:
	rm -rf $(VENV) tests/.tiny-vit tests/.media tests/.db.sqlite3* tests/.test-db.sqlite3*
