# StreamCrawl — every set-up step is explicit here: `make run` and `make test` install
# whatever is missing (Debian packages, the virtualenv, Python packages) and are quick
# when nothing is. Run as root on Debian 12 (apt-get needs it), or install the Debian
# packages listed in APT_PACKAGES yourself first.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.streamcrawl-installed
# Debian packages: PostgreSQL 15 server binaries (embedded stack), Chromium (rich renderer),
# Prometheus with promtool (embedded stack's metrics, rule tests), venv support for the system
# Python, runuser (util-linux) to run PostgreSQL as `postgres`, iproute2 (network namespaces of
# the multi-host drill) and kubectl (`kubectl kustomize` renders deploy/kubernetes in the tests;
# Debian's package is `kubernetes-client`, installed only when no kubectl is on PATH).
APT_PACKAGES := postgresql-15 chromium prometheus python3-venv util-linux iproute2 ca-certificates
PG_BIN := /usr/lib/postgresql/15/bin/initdb
CHROMIUM := /usr/bin/chromium
PROMETHEUS := /usr/bin/prometheus
# The offline demo web's host names resolve to loopback inside StreamCrawl only.
# Discovery treats demo.test as a public suffix, so blog.site-001.demo.test is on the domain of
# site-001.demo.test (the demo's oracle assumes the same).
DEMO_ENV := STREAMCRAWL_INGESTOR_ALLOW_PRIVATE_NETWORKS=true \
	STREAMCRAWL_INGESTOR_RESOLVE_OVERRIDES='{"*.demo.test": "127.0.0.1"}' \
	STREAMCRAWL_DISCOVERY_EXTRA_SUFFIXES='["demo.test"]' \
	STREAMCRAWL_INGESTOR_TOTAL_TIMEOUT_S=8 STREAMCRAWL_INGESTOR_READ_TIMEOUT_S=4 \
	STREAMCRAWL_INGESTOR_PER_IP_CONCURRENCY=64 STREAMCRAWL_INGESTOR_MAX_REQUEUES=2 \
	STREAMCRAWL_INGESTOR_REQUEUE_BASE_DELAY_S=1

.PHONY: help install apt venv run demo up down status test unit lint typecheck bench bench-scale clean

help:
	@echo "make run    - install what is missing, start the embedded stack, crawl the offline demo web"
	@echo "make test   - install what is missing, run lint, type checks and the test suite"
	@echo "make bench  - run the benchmarks and write BENCHMARKS.md"
	@echo "make bench-scale - the end-to-end crawl at 4k, 20k and 100k URLs beside Scrapy (long)"
	@echo "make down   - stop the embedded stack"

install: apt venv

# Install the Debian packages only when something is missing (quick otherwise).
apt:
	@missing=""; \
	[ -x $(PG_BIN) ] || missing="$$missing postgresql-15"; \
	[ -x $(CHROMIUM) ] || missing="$$missing chromium"; \
	[ -x $(PROMETHEUS) ] && command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	command -v kubectl >/dev/null || missing="$$missing kubernetes-client"; \
	$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || missing="$$missing python3-venv"; \
	command -v runuser >/dev/null || missing="$$missing util-linux"; \
	[ -f /etc/ssl/certs/ca-certificates.crt ] || missing="$$missing ca-certificates"; \
	if [ -n "$$missing" ]; then \
		echo ">> installing Debian packages:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "error: need root to apt-get install$$missing (or install them first)"; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip>=24" wheel "setuptools>=68"
	$(BIN)/pip install -q -e ".[dev]"
	@touch $(STAMP)

run: install
	$(DEMO_ENV) $(BIN)/streamcrawl up
	$(DEMO_ENV) $(BIN)/streamcrawl demo --json

up: install
	$(BIN)/streamcrawl up

down:
	$(BIN)/streamcrawl down

status:
	$(BIN)/streamcrawl status

lint: venv
	$(BIN)/ruff check workers crawl_assets tests bench
	$(BIN)/ruff format --check workers crawl_assets tests bench

typecheck: venv
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -q tests/unit

test: install lint typecheck
	$(BIN)/pytest -q -rs -p no:cacheprovider --durations=15

bench: install
	$(BIN)/python -m bench.run

# The end-to-end scale benchmark at 4k, 20k and 100k URLs (about an hour); refreshes its rows in BENCHMARKS.md.
bench-scale: install
	STREAMCRAWL_BENCH_SIZES=4000,20000,100000 $(BIN)/python -m bench.run --only scale

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
