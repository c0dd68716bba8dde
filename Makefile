# Two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the packages pyproject.toml installs (read from there, so a new package needs no edit here)
PROJECT_PACKAGES := $(shell sed -n 's/^packages = \[\(.*\)\]/\1/p' pyproject.toml | tr -d '",')
export FLASK_APP := wsgi

.PHONY: bytecode js-harness run test lint test-sqlite test-postgres install dev-setup clean bench bench-insights bench-insights-1m load load-compare system-packages-run system-packages-test test-fast \
	translations-extract translations-update translations-compile translations-check translations-init

# uv (pinned in constraints.txt, bootstrapped with the venv's own pip) resolves and installs the packages, in a few
# CPU s (bench/RESULTS.md, suitelive); where uv cannot run or reach the index, pip installs the same pins as before.
# Without bytecode either way, then compileall on every core (pip wrote it one file at a time, with a core idle),
# leaving out what no process of the app or the suite imports, 42 % of the venv's source (52 of 124 MB): what
# moto[server] brings for AWS services other than S3 (cfn-lint with sympy, networkx and mpmath; docker, antlr4,
# aws-xray-sdk, jsonpath-ng; moto's own ~170 other services: its S3 server loads core, s3, iam, sts, events,
# cloudwatch and its server modules), and pip itself. Were one of them imported, Python compiles it in memory.
INSTALL_SPEC := -c constraints.txt -e '.[test,redis]'
MOTO_USED := core|s3|s3bucket_path|iam|sts|events|cloudwatch|moto_api|moto_server|utilities
NOT_IMPORTED := /site-packages/(sympy|networkx|mpmath|cfnlint|pip|docker|antlr4|aws_xray_sdk|jsonpath_ng|moto/(?!($(MOTO_USED))/)[^/]+)/
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	{ $(BIN)/pip install --quiet --only-binary uv -c constraints.txt uv && $(BIN)/uv pip install --quiet --python $(BIN)/python \
		$(INSTALL_SPEC); } || { echo "uv failed: installing with pip"; $(BIN)/pip install --quiet --upgrade pip && \
		$(BIN)/pip install --quiet --no-compile $(INSTALL_SPEC); }
	$(BIN)/python -m compileall -q -j0 -x '$(NOT_IMPORTED)' $(VENV)/lib >/dev/null
	touch $(STAMP)

# compiled catalogs (translations/<code>/LC_MESSAGES/messages.mo) are built here, never committed
MO_FILES := $(patsubst %.po,%.mo,$(wildcard translations/*/LC_MESSAGES/messages.po))
translations/%/LC_MESSAGES/messages.mo: translations/%/LC_MESSAGES/messages.po $(STAMP)
	$(BIN)/python -m core.catalogs compile

install: $(STAMP) $(MO_FILES)

# Translations (README, "Translations"): extract the marked strings to translations/messages.pot; update merges
# them into every catalog (new strings arrive empty, changed ones fuzzy); fill the msgstr lines, then compile
translations-extract: $(STAMP)
	$(BIN)/python -m core.catalogs extract

translations-update: $(STAMP)
	$(BIN)/python -m core.catalogs update

translations-compile: $(STAMP)
	$(BIN)/python -m core.catalogs compile

# lists every missing, untranslated or fuzzy entry (tests/test_translations.py fails on the same list)
translations-check: $(STAMP)
	$(BIN)/python -m core.catalogs check

# a new language: make translations-init CODE=fr
translations-init: $(STAMP)
	@test -n "$(CODE)" || { echo "usage: make translations-init CODE=fr"; exit 1; }
	$(BIN)/python -m core.catalogs init $(CODE)

# Debian packages (Pango for run; plus PostgreSQL, Chromium, Redis for test): installed when root, else the
# apt-get line to run is printed and make stops
system-packages-run:
	@.ci/system-packages run

system-packages-test:
	@.ci/system-packages test

instance/config.py:
	mkdir -p instance
	@$(BIN)/python -c "import secrets; print(f'SECRET_KEY = {secrets.token_urlsafe(48)!r}')" > instance/config.py
	@chmod 600 instance/config.py
	@echo "Wrote a random development SECRET_KEY to instance/config.py"

dev-setup: $(STAMP) $(MO_FILES) instance/config.py
	FLASK_APP_ENV=development $(BIN)/flask db upgrade
	@test -f instance/signing-keys.json || FLASK_APP_ENV=development $(BIN)/flask credentials keygen
	FLASK_APP_ENV=development $(BIN)/flask skills load
	FLASK_APP_ENV=development $(BIN)/flask courses import courses/catalog
	FLASK_APP_ENV=development $(BIN)/flask users seed-demo

# the job worker runs beside the web server (mail reaches instance/outbox through it); Ctrl+C stops both
run: system-packages-run dev-setup
	@echo "Serving on http://127.0.0.1:5000 with the job worker beside it  (Ctrl+C stops both)"
	@FLASK_APP_ENV=development $(BIN)/flask worker --workers 2 & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	FLASK_APP_ENV=development $(BIN)/flask run --host 127.0.0.1 --port 5000

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The wallet harness (tests/js, tests/test_wallet_js.py): the Digital Bazaar libraries pinned by its lockfile, installed
# with npm ci (registry packages only, no scripts run); re-installed when the lockfile changes
JS_HARNESS := tests/js/node_modules/.package-lock.json
$(JS_HARNESS): tests/js/package.json tests/js/package-lock.json
	cd tests/js && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

js-harness: $(JS_HARNESS)

# PYTEST_ARGS narrows any test target, e.g. `make test-fast PYTEST_ARGS=tests/test_learning.py`
PYTEST_ARGS ?=

test-sqlite: $(STAMP) $(MO_FILES) $(JS_HARNESS)
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# PG_SELECT: e.g. -m "not nodb" (tests marked nodb never touch the database; tests/conftest.py checks that);
# `make test-postgres` on its own runs everything
PG_SELECT ?=
# PG_ORDER: e.g. --live-servers-last (tests/conftest.py says why)
PG_ORDER ?=

test-postgres: $(STAMP) $(MO_FILES) $(JS_HARNESS)
	$(BIN)/python -m tests.pgcluster -- $(BIN)/pytest -q -p no:cacheprovider $(PG_SELECT) $(PG_ORDER) $(PYTEST_ARGS)

# The project's bytecode, written once before the two halves start: where PYTHONDONTWRITEBYTECODE is set (this
# machine sets it) every gunicorn worker, task worker and `flask` subprocess the suite starts would otherwise compile
# the project's ~50k lines again (~0.35 s of CPU each). Stale files are harmless: Python checks the source's mtime.
# Likewise pytest's assertion-rewritten test modules (tests/rewrite_cache.py): each half rewrote all of tests/ (~7 s).
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q -j0 $(PROJECT_PACKAGES) wsgi.py >/dev/null
	@$(BIN)/python -m tests.rewrite_cache

# `make test` runs the suite as six parts side by side, three per database: tests/browser + tests/servers, and the
# rest split in two by file, the files dealt out by their measured CPU (tests/conftest.py --part, tests/part_weights.tsv)
# so both end together. A half run as one pytest process used about one core
# (a test waits on its database server, its live server or Chromium), so two halves left ~40 % of the two cores
# idle (a fresh clone: 18.8 CPU minutes in 15.7 minutes of wall); six parts keep both cores busy. Every test that
# touches the database runs on both databases; the nodb ones only on SQLite. Each part's output is printed when it
# finishes; each PostgreSQL part starts its own throwaway cluster.
LIVE_TESTS := browser or servers
# each part prints its wall time and the CPU seconds of its whole process tree when it ends (browsers, servers and
# the PostgreSQL cluster included), and `make test` ends with the table of all of them (tests/partrun.py); the
# system python3 runs it, so it works before the venv exists
PART := $(PYTHON) -m tests.partrun
# pytest with the garbage collector frozen at exit: a part's exit skipped ~2 s of collector passes over the objects
# of the whole suite (tests/quick_exit.py; the live servers run through it too)
QUICK_EXIT := $(BIN)/python -m tests.quick_exit
# the live parts collect only their two folders (collecting the whole suite to deselect all but them cost ~3 s of
# CPU per part); with PYTEST_ARGS, only what it names
LIVE_PATHS = $(if $(PYTEST_ARGS),,tests/browser tests/servers)
TEST_PARTS := test-part-sqlite-live test-part-sqlite-0 test-part-sqlite-1 \
	test-part-postgres-live test-part-postgres-0 test-part-postgres-1

test-part-sqlite-live: $(STAMP) $(MO_FILES) $(JS_HARNESS)
	$(PART) $@ -- $(QUICK_EXIT) pytest -q -p no:cacheprovider -m "$(LIVE_TESTS)" $(LIVE_PATHS) $(PYTEST_ARGS)

test-part-sqlite-%: $(STAMP) $(MO_FILES) $(JS_HARNESS)
	$(PART) $@ -- $(QUICK_EXIT) pytest -q -p no:cacheprovider -m "not ($(LIVE_TESTS))" --part $*/2 $(PYTEST_ARGS)

test-part-postgres-live: $(STAMP) $(MO_FILES) $(JS_HARNESS)
	$(PART) $@ -- $(BIN)/python -m tests.pgcluster -- $(QUICK_EXIT) pytest -q -p no:cacheprovider \
		-m "($(LIVE_TESTS)) and not nodb" $(LIVE_PATHS) $(PYTEST_ARGS)

test-part-postgres-%: $(STAMP) $(MO_FILES) $(JS_HARNESS)
	$(PART) $@ -- $(BIN)/python -m tests.pgcluster -- $(QUICK_EXIT) pytest -q -p no:cacheprovider \
		-m "not ($(LIVE_TESTS)) and not nodb" --part $*/2 $(PYTEST_ARGS)

# Before the parts, side by side where they do not depend on each other: the JS harness's `npm ci` runs while pip
# installs (a fresh clone), then lint, bytecode and the catalogs together. The system-packages check runs first and
# alone, so a machine that lacks them stops at once with the apt-get line.
test: system-packages-test
	@$(PART) --reset
	@$(PART) "before the parts" -- $(MAKE) --no-print-directory -j4 --output-sync=target lint bytecode $(MO_FILES) \
		$(JS_HARNESS)
	@$(MAKE) --no-print-directory -j6 --output-sync=target $(TEST_PARTS); status=$$?; $(PART) --summary; exit $$status

# the inner loop: SQLite only, without Chromium, the two-server tests and the slow property/fuzz/fault tests
# (`make test` runs everything)
test-fast: $(STAMP) $(MO_FILES) $(JS_HARNESS)
	$(BIN)/pytest -q -p no:cacheprovider -m "not browser and not servers and not slow" $(PYTEST_ARGS)

bench: $(STAMP)
	@command -v wrk >/dev/null || { echo "bench needs wrk: apt-get install wrk"; exit 1; }
	$(BIN)/python -m tests.pgcluster -- $(BIN)/python -m bench.run

# the insights dashboard alone: on `make bench`'s 10,000 learners, and on a generated 1,000,000 (BENCH_LEARNERS);
# each replaces its own section of bench/RESULTS.md
bench-insights: $(STAMP)
	$(BIN)/python -m tests.pgcluster -- $(BIN)/python -m bench.insights

bench-insights-1m: $(STAMP)
	$(BIN)/python -m tests.pgcluster -- $(BIN)/python -m bench.insights_scale

# Load test (not part of `make test`): Locust in its own virtualenv, pinned by bench/load-constraints.txt
LOAD_VENV := .venv-load
LOAD_STAMP := $(LOAD_VENV)/.installed
LOAD_SECONDS ?= 300
LOAD_USERS ?= 24

$(LOAD_STAMP): bench/load-constraints.txt
	$(PYTHON) -m venv $(LOAD_VENV)
	$(LOAD_VENV)/bin/pip install --quiet -c bench/load-constraints.txt locust
	touch $(LOAD_STAMP)

load: $(STAMP) $(LOAD_STAMP)
	LOAD_SECONDS=$(LOAD_SECONDS) LOAD_USERS=$(LOAD_USERS) LOCUST=$(LOAD_VENV)/bin/locust \
		$(BIN)/python -m tests.pgcluster -- $(BIN)/python -m bench.load

# the same load against the baseline commit and this tree, interleaved in one run (bench/load_compare.py)
LOAD_ROUNDS ?= 3
LOAD_BASELINE ?= 5f4f25d
load-compare: LOAD_SECONDS = 60
load-compare: $(STAMP) $(LOAD_STAMP)
	LOAD_SECONDS=$(LOAD_SECONDS) LOAD_USERS=$(LOAD_USERS) LOAD_ROUNDS=$(LOAD_ROUNDS) LOAD_BASELINE=$(LOAD_BASELINE) \
		LOCUST=$(LOAD_VENV)/bin/locust $(BIN)/python -m tests.pgcluster -- $(BIN)/python -m bench.load_compare

clean:
	rm -rf $(VENV) $(LOAD_VENV) .pytest_cache .ruff_cache translations/.last-extraction.*
