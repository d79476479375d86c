# IonSieve: `make run` starts everything, `make test` runs every test.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test install dev-install migrate demo test-unit test-integration test-integration-embedded \
	test-integration-server test-browser lint bench

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
dev-install: $(VENV)/.dev-installed

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py setup_demo

run: demo
	./scripts/run.sh

test: dev-install
	./scripts/services.sh
	./scripts/chromium.sh
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run
	$(MAKE) lint
	$(MAKE) test-unit test-integration test-browser

test-unit:
	$(VENV)/bin/pytest -m "not integration and not browser" -q

# Integration (real worker processes, faults) on both supported set-ups: the embedded default
# that `make run` starts (SQLite file + filesystem broker), then PostgreSQL + Redis.
test-integration: test-integration-embedded test-integration-server

test-integration-embedded:
	env -u DATABASE_URL CELERY_BROKER_URL=filesystem:// $(VENV)/bin/pytest -m integration -q

test-integration-server:
	DATABASE_URL=$(PG_URL) CELERY_BROKER_URL=$(REDIS_URL) $(VENV)/bin/pytest -m integration -q

test-browser:
	$(VENV)/bin/pytest -m browser -q

lint:
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

# Benchmarks print figures and ratios (bench/README.md); each fails (non-zero exit) when its peer
# or data is missing. bench_real.py needs ../shared/data/ionimages; bench_load.py PostgreSQL + Redis.
bench: dev-install
	$(PY) bench/bench_ingest.py
	$(PY) bench/bench_thumbnails.py
	$(PY) bench/bench_ingest_score.py
	$(PY) bench/bench_upload.py
	$(PY) bench/bench_classifier.py
	$(PY) bench/bench_real.py
	$(PY) bench/bench_accuracy.py
	$(PY) bench/bench_active.py
	./scripts/services.sh && $(PY) bench/bench_scale.py --size 100k --size 1m
	./scripts/services.sh && $(PY) bench/bench_load.py
	./scripts/services.sh && $(PY) bench/bench_load.py --only scale

# The user guide's pictures (docs/img/) come from the browser tests' screenshots.
screenshots: dev-install
	$(MAKE) test-browser
	$(PY) scripts/guide_screenshots.py
