# The two commands: `make demo` and `make test`. Both set everything up from scratch.
# In Prefect: `make serve` (a local server, workers and the deployments; LOCAL_AWS=1 adds a local
# AWS with demo data) and `make deploy` (prefect.yaml to the server PREFECT_API_URL names).
PYTHON ?= python3
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
RUN = $(UV) run --locked --all-extras

.PHONY: demo serve deploy test check lint typecheck deps docs pytest install clean reference

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv>=0.9,<1"

install: $(UV)
	$(UV) sync --locked --all-extras

demo: install
	$(RUN) s3-housekeeping demo

serve: install
	$(RUN) python -m deployments.serve

deploy: install
	$(RUN) python -m deployments.deploy

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: install
	$(RUN) mypy

# Every module the code imports is a dependency it declares (pyproject.toml), none only through
# another package; [tool.deptry] in pyproject.toml says why each exception is one.
deps: install
	$(RUN) deptry .

# The documentation site (mkdocs.yml, docs/) into site/. --strict fails the build on any warning:
# a page missing from the nav, a link to a missing page or anchor (mkdocs.yml's validation).
# Never with -q: MkDocs then drops its warnings before strict mode counts them. The variable
# silences Material's notice about its own future (not about these pages).
docs: install
	NO_MKDOCS_2_WARNING=1 $(RUN) mkdocs build --strict

# Three workers (pytest-xdist), a test file each at a time, so a module's fixtures start once;
# tests/conftest.py hands the deployed stack's files to one worker as one unit, so the stack
# starts once (pytest-xdist 3.8 cannot name `loadgroup` groups under pytest 9.2). Most of the
# suite waits on servers and processes: on two cores, two workers kept them busy 74 % of the
# time (13 min 34 s), three 88 % (12 min 5 s).
pytest: install
	$(RUN) pytest -n 3 --dist loadfile

test: lint typecheck deps docs pytest

# The inner loop: lint, types and the tests that start no server (no Prefect API, no moto over
# HTTP, no e2e test: tests/conftest.py marks the others `server`), in under two minutes here.
check: lint typecheck
	$(RUN) pytest -n 2 -m "not server" -q

# The settings reference page's tables (docs/reference/settings.md), made from tasks/settings.py
# (a test checks they match).
reference: install
	$(RUN) python -m devtools.reference

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache manifests test-output site

# Benchmarks (benchmarks/README.md): `make bench N=20000` runs every tool against local S3
# servers; `make bench-memory` measures plan + apply at 10k vs 1M objects; `make
# bench-conditional` what ETag conditions cost the server's deletes; `make bench-flat` one flat
# prefix (200,000 objects, 50 ms per request) listed and deleted side by side with s5cmd and
# awscli; `make bench-startup` the fixed cost of a local run (an empty dry run, with and without
# a Prefect server) beside s5cmd ls and aws s3 ls; `make bench-rules` what the retention rules
# cost a plan (include/exclude patterns' client CPU over 200,000 objects, keep_newest's memory
# over 1,000,000 in 10,000 groups, protect_tags' tag reads at 50 ms per request). BENCH_ARGS,
# MEMORY_ARGS, CONDITIONAL_ARGS, FLAT_ARGS, STARTUP_ARGS and RULES_ARGS pass options through
# (python -m benchmarks.run --help, python -m benchmarks.flat --help, python -m
# benchmarks.startup --help, python -m benchmarks.rules --help).
N ?= 20000
BENCH_ARGS ?=
MEMORY_ARGS ?=
CONDITIONAL_ARGS ?=
FLAT_ARGS ?=
STARTUP_ARGS ?=
RULES_ARGS ?=
BENCH_RUN = $(UV) run --locked --all-extras --group bench

.PHONY: bench bench-memory bench-conditional bench-flat bench-startup bench-rules bench-install

bench-install: $(UV)
	$(UV) sync --locked --all-extras --group bench --inexact

bench: bench-install
	$(BENCH_RUN) python -m benchmarks.run --objects $(N) $(BENCH_ARGS)

bench-memory: bench-install
	$(BENCH_RUN) python -m benchmarks.memory $(MEMORY_ARGS)

bench-conditional: bench-install
	$(BENCH_RUN) python -m benchmarks.conditional $(CONDITIONAL_ARGS)

bench-flat: bench-install
	$(BENCH_RUN) python -m benchmarks.flat $(FLAT_ARGS)

bench-startup: bench-install
	$(BENCH_RUN) python -m benchmarks.startup $(STARTUP_ARGS)

bench-rules: bench-install
	$(BENCH_RUN) python -m benchmarks.rules $(RULES_ARGS)

# The fault-injection matrix (tests/chaos): every scenario with CHAOS_SEEDS seeds through a
# fault-injecting S3 proxy; and the tamper matrix: every way a plan is made and applied (a live
# listing, a saved plan, an S3 Inventory, a cluster's index and parts, a fleet's plans) x every
# way its files can be edited, each seed editing another line, row, part or cut. Prints their
# summary and writes it to test-output/chaos/ (summary.json, summary.md). `make test` runs one
# seed of each but the slow ones (held answers, runs killed and run again once their lock
# expires, two runs at once, an undelete between plan and apply, some plan tamperings: each is
# proven by a test of its own in the suite), and of the tamper matrix one case a source. The
# hostile-neighbour suite (another user's files and local APIs) has no seed: both run it whole.
CHAOS_SEEDS ?= 5

.PHONY: chaos

chaos: install
	CHAOS_SEEDS=$(CHAOS_SEEDS) CHAOS_FULL=1 $(RUN) pytest tests/chaos tests/e2e/test_hostile_neighbour.py -m chaos -q
