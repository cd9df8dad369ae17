# Every routine task; each target creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck unit clean browser bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/jira-crm-sync demo

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

# The HTML report's browser test opens the report in Debian's chromium: installed here when
# absent and apt can (as root); elsewhere the test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	  --no-install-recommends chromium >/dev/null; } \
	  || echo "chromium is absent and cannot be installed here: the browser test of the HTML report will skip"

# Our modules compiled once up front: the suite starts the CLI in hundreds of processes,
# and where PYTHONDONTWRITEBYTECODE is set (as on the CI machine) each would compile them
# again (about 0.15 s of CPU a process); Python still reads .pyc files written here.
unit: $(VENV)/.installed-test browser
	$(BIN)/python -m compileall -q connectors mappings sync bench tests
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck unit

# SPEC section 9: calls against the minimum, wall/CPU time, peak RSS, merge rate; JSON on
# stdout, a table on stderr. BENCH_ARGS e.g. --sizes 1000,10000 --latency-ms 50.
bench: $(VENV)/.installed
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
