# Two entry points for a fresh machine with Docker:
#   make demo   set up, then release the bundled example (Spring-style API + Next.js + pgvector)
#   make test   set up, then lint (ruff), the fast tier (unit tests) and the integration tier on the real engine
# make test-long runs the long scenarios (marked `long`) that the nightly workflow runs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: setup demo demo-down lint test test-fast test-long test-lua unit bench
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test,bench]'
	touch $@

demo: setup
	examples/secrets.sh
	$(PY) examples/demo.py

demo-down: setup
	$(PY) examples/demo.py --down

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The integration tier on two workers, one module at a time on each (module-shared stacks stay
# shared; tests/conftest.py starts the slowest modules first). Its tests wait on the engine
# more than they use a core: two workers take about two thirds of the serial time here.
# WORKERS=0 runs it serially.
WORKERS ?= 2
test: lint test-fast
	TESTCONTAINERS_RYUK_DISABLED=true $(PY) -m pytest -ra --durations=40 -m "not long" --ignore=tests/unit \
		-n $(WORKERS) --dist loadfile

# The fast tier, first: the pure core, the Lua modules and the release flow on a fake runtime.
test-fast unit: setup
	TESTCONTAINERS_RYUK_DISABLED=true $(PY) -m pytest tests/unit -q

test-long: setup
	TESTCONTAINERS_RYUK_DISABLED=true $(PY) -m pytest -ra --durations=15 -m long

# The edge's Lua specs (tests/lua): busted under LuaJIT in a throwaway container, a few seconds
# once its image is built (the first run builds it).
test-lua: setup
	TESTCONTAINERS_RYUK_DISABLED=true $(PY) -m pytest tests/unit/test_lua.py -q

bench: setup
	$(PY) bench/zero_downtime.py --switches 5 --releases 2
