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
# suite runs everything but the transformers backend (see CONTRIBUTING.md). PYTHON_NEW
# names the interpreter; left empty, .ci/find-python looks in pyenv's versions
# and on PATH. Without one the suite is skipped with a loud notice, and with
# CI=true the run fails instead: the suite must never disappear silently.
PYTHON_NEW ?=
DJANGO_NEW ?= Django>=6.0,<6.2
VENV_NEW ?= .venv-django6

# The timm backend needs torchvision, and no torchvision at hand imports beside
# .venv's CPU torch: its tests and the backends benchmark run in a venv of
# their own, on a torch build (CUDA, runs on the CPU) that has a matching
# torchvision. Users need none of this: pip install 'nsfw-moderation[timm]'.
VENV_TIMM ?= .venv-timm
TIMM_TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
TIMM_TESTS ?= tests/test_timm.py tests/test_benchmark_backends.py

# axe-core for the accessibility checks of the browser tests (tests/.axe/).
AXE_VERSION := 4.14.1
AXE_SHA256 := e6b0ce02b84d892e2e33e403485e7f3d6c29e2be6df65daf44d89ba564139745
AXE_JS := tests/.axe/$(AXE_VERSION)/axe.min.js

NOTICE_RULE := ================================================================================

DATABASE_URL_PG ?= postgres://postgres@127.0.0.1:5432/nsfw_moderation
REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: install demo test test-quick lint docs pytest pytest-postgres-redis pytest-django6 \
	pytest-timm browser gettext messages services benchmark benchmark-scale benchmark-backends \
	clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[transformers,openvino,opennsfw,blocklist,test,dev,docs]" playwright
	touch $@

$(VENV_NEW)/.installed: pyproject.toml
	$(PYTHON_NEW) -m venv $(VENV_NEW)
	$(VENV_NEW)/bin/pip install --quiet --upgrade pip
	$(VENV_NEW)/bin/pip install --quiet "$(DJANGO_NEW)" -e ".[opennsfw,blocklist,test]" playwright
	touch $@

$(VENV_TIMM)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV_TIMM)
	$(VENV_TIMM)/bin/pip install --quiet --upgrade pip
	$(VENV_TIMM)/bin/pip install --quiet $(foreach spec,$(TIMM_TORCH_SPEC),"$(spec)")
	$(VENV_TIMM)/bin/pip install --quiet -e ".[transformers,timm,opennsfw,test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python demo_site/run.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python manage.py makemigrations --check --dry-run --settings=tests.settings

# The documentation site, built as CI builds it: --strict turns a broken link or
# anchor, a page missing from the nav, or a nav entry without a page into a failure.
# Never --quiet: it hides the warnings that --strict counts, and the build passes.
DOCS_SITE ?= .docs-site
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir $(DOCS_SITE)

# Browser tests drive Debian's chromium (never a downloaded browser build) and
# check every page with axe-core, pinned, from the npm registry.
browser: $(AXE_JS)
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

$(AXE_JS):
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq npm >/dev/null; }
	rm -rf $(dir $@) && mkdir -p $(dir $@)
	cd $(dir $@) && npm pack --silent axe-core@$(AXE_VERSION) >/dev/null \
		&& echo "$(AXE_SHA256)  axe-core-$(AXE_VERSION).tgz" | sha256sum --check --quiet \
		&& tar -xzf axe-core-$(AXE_VERSION).tgz package/axe.min.js package/LICENSE \
		&& mv package/axe.min.js axe.min.js && mv package/LICENSE LICENSE \
		&& rm -rf package axe-core-$(AXE_VERSION).tgz

# GNU gettext: makemessages, and the test that every catalogue is complete.
gettext:
	@command -v xgettext >/dev/null && command -v msgattrib >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq gettext >/dev/null; }

# After adding or changing translatable strings: update every catalogue (or,
# with LOCALE=it, start a new one), translate the new entries, then compile.
# Run from inside the app so that only nsfw_moderation/ is searched.
messages: install gettext
	cd nsfw_moderation && $(abspath $(BIN))/django-admin makemessages \
		$(if $(LOCALE),--locale $(LOCALE),--all) --no-location --no-obsolete
	cd nsfw_moderation && $(abspath $(BIN))/django-admin compilemessages

# PostgreSQL and Redis run on the machine; start them if they are down.
services:
	@pg_isready -q -h 127.0.0.1 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 -::1 \
		--port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
	@for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 && redis-cli ping >/dev/null 2>&1 && exit 0; sleep 1; done; \
		echo "PostgreSQL or Redis did not start" >&2; exit 1

# The Wagtail suite (nsfw_moderation.contrib.wagtail) needs Wagtail's apps
# installed, so it runs under settings of its own, after each main suite.
WAGTAIL_SUITE := -m pytest tests/with_wagtail --ds=tests.wagtail_settings

# SQLite and django-q2's ORM broker: the embedded default.
pytest: install browser gettext
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(BIN)/python $(WAGTAIL_SUITE) $(PYTEST_ARGS)

# The same suite on PostgreSQL, every worker test on the Redis broker; the
# queue tests also run RQ and Celery workers there (Redis db 5, a queue name
# of their own per run: NSFW_TEST_QUEUE_REDIS_URL to change).
pytest-postgres-redis: install browser gettext services
	DATABASE_URL=$(DATABASE_URL_PG) NSFW_TEST_BROKER=redis REDIS_URL=$(REDIS_URL) \
		NSFW_TEST_CLUSTER_NAME=nsfw-tests-$$$$ NSFW_TEST_REPEAT=postgresql \
		$(BIN)/python -m pytest $(PYTEST_ARGS)
	DATABASE_URL=$(DATABASE_URL_PG) $(BIN)/python $(WAGTAIL_SUITE) $(PYTEST_ARGS)

# Django 6 on Python 3.12+, without torch: workers use the opennsfw backend.
pytest-django6:
	@python="$(PYTHON_NEW)"; python="$${python:-$$(.ci/find-python 3.12)}"; \
	if [ -z "$$python" ]; then \
		printf '\n%s\n%s\n%s\n%s\n\n' "$(NOTICE_RULE)" \
			"SKIPPED: the Django 6 suite (make pytest-django6) needs Python 3.12 or newer;" \
			"none was found in $${PYENV_ROOT:-$$HOME/.pyenv}/versions or as python3.12/3.13/3.14/python3 on PATH." \
			"Install one, or name it: make test PYTHON_NEW=/path/to/python3.12" >&2; \
		if [ "$$CI" = true ]; then echo "CI=true: failing, not skipping." >&2; exit 1; fi; \
		exit 0; \
	fi; \
	echo "Django 6 suite on $$python"; \
	$(MAKE) --no-print-directory browser gettext && \
	$(MAKE) --no-print-directory PYTHON_NEW="$$python" $(VENV_NEW)/.installed && \
	NSFW_TEST_REPEAT=django6 $(VENV_NEW)/bin/python -m pytest $(PYTEST_ARGS) && \
	$(VENV_NEW)/bin/python $(WAGTAIL_SUITE) $(PYTEST_ARGS)

# The timm backend's tests in .venv-timm. NSFW_TEST_REQUIRE_TIMM turns their
# skip (where timm is missing) into a failure: this suite cannot pass without them.
pytest-timm: $(VENV_TIMM)/.installed
	NSFW_TEST_REQUIRE_TIMM=1 $(VENV_TIMM)/bin/python -m pytest $(TIMM_TESTS) $(PYTEST_ARGS)

test-quick: lint docs pytest

test: lint docs pytest pytest-postgres-redis pytest-django6 pytest-timm

# Throughput, agreement, save() cost, latency and memory; writes docs/benchmarks.md.
benchmark: install
	$(BIN)/python benchmarks/run.py $(ARGS)

# Host queries, admin pages and the worker's claim at 10k, 100k and 1M rows on
# PostgreSQL (a database of its own, dropped afterwards); writes the "At scale"
# section of docs/benchmarks.md. Not part of `make test`.
DATABASE_URL_BENCH ?= postgres://postgres@127.0.0.1:5432/nsfw_scale_bench
benchmark-scale: install services
	$(BIN)/python benchmarks/scale.py --database-url $(DATABASE_URL_BENCH) $(ARGS)

# Each backend's images/s from JPEG bytes, at full size, in .venv-timm; writes
# the "Backends compared" section of docs/benchmarks.md. Not part of `make test`.
benchmark-backends: $(VENV_TIMM)/.installed
	$(VENV_TIMM)/bin/python benchmarks/backends.py $(ARGS)

clean:
	rm -rf $(DOCS_SITE) $(VENV) $(VENV_NEW) $(VENV_TIMM) tests/.axe tests/.tiny-vit tests/.openvino tests/.media tests/.db.sqlite3* tests/.test-db.sqlite3* tests/.moderation-db.sqlite3* tests/.test-moderation-db.sqlite3*
