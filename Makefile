# Two commands set everything up from a fresh clone: `make run` and `make test`.
# Both (re)create .venv from pyproject.toml when it is missing or older than it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench night clean chromium reliability

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/gasbill demo

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/ruff format --check src tests bench migrations
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) chromium
	$(BIN)/pytest

# The browser tests drive Debian's Chromium (never a downloaded browser) and need CJK fonts.
chromium:
	@test -x /usr/bin/chromium -a -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc || \
		{ apt-get update && apt-get install -y chromium fonts-wqy-microhei; }

# The deterministic simulation (tests/sim): SEEDS seeds x OPS operations; SEED=n replays one,
# CRASH=site crashes there, CRASH_SITES=1 every site in turn, MINUTES=m starts no seed after m
# minutes (the table says how many ran), JOBS=n runs seeds in n processes. With
# GASBILL_TEST_DATABASE_URL: on PostgreSQL (worker n > 0 on its own database <name>_wn).
SEEDS ?= 2000
OPS ?= 300
SETTLE ?= 6
JOBS ?= 2
reliability: $(STAMP)
	$(BIN)/python -m tests.sim.run --seeds $(SEEDS) --ops $(OPS) --settle $(SETTLE) \
		$(if $(SEED),--seed $(SEED)) $(if $(CRASH),--crash $(CRASH)) \
		$(if $(CRASH_SITES),--crash-sites) $(if $(MINUTES),--minutes $(MINUTES)) --jobs $(JOBS)

bench: $(STAMP)
	$(BIN)/python bench/rating.py

# The running system's night (bench/night.py): `make night NIGHT="--meters 100000"`.
night: $(STAMP)
	$(BIN)/python bench/night.py $(NIGHT)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
