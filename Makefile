# The two commands: `make demo` and `make test`. Both set everything up from scratch.
PYTHON ?= python3
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
RUN = $(UV) run --locked --all-extras

.PHONY: demo test lint typecheck pytest install clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv>=0.9,<1"

install: $(UV)
	$(UV) sync --locked --all-extras

demo: install
	$(RUN) s3-housekeeping demo

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: install
	$(RUN) mypy

pytest: install
	$(RUN) pytest

test: lint typecheck pytest

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache manifests
