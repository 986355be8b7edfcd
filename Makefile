# Custos: `make run` serves with demo data on SQLite; `make test` runs the suite on
# SQLite and on PostgreSQL (TEST_DATABASE_URL, or a throwaway cluster when the server
# binaries are installed), the two legs side by side.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DATABASE_URL ?= sqlite://data/custos.sqlite3

.PHONY: run test test-sqlite test-postgres lint format migrations schema bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	mkdir -p data
	$(BIN)/custos migrate
	$(BIN)/custos seed-demo
	$(BIN)/custos serve --host 127.0.0.1 --port 8000

# The legs side by side take about half the time on two cores; each leg's output is shown
# whole when it ends (`make test-sqlite` or `make test-postgres` runs one, as it goes).
# scripts/test-legs.sh reads each leg's outcome from a file, not from make's job control.
test: $(STAMP)
	@bash scripts/test-legs.sh

test-sqlite: $(STAMP)
	env -u TEST_DATABASE_URL $(BIN)/pytest -q

test-postgres: $(STAMP)
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
		echo "== PostgreSQL leg on TEST_DATABASE_URL"; $(BIN)/pytest -q; \
	elif $(BIN)/python tests/pgcluster.py --check; then \
		echo "== PostgreSQL leg on a throwaway cluster"; \
		$(BIN)/python tests/pgcluster.py -- $(BIN)/pytest -q; \
	elif [ -n "$$CUSTOS_REQUIRE_POSTGRES" ]; then \
		echo "PostgreSQL server binaries not found and CUSTOS_REQUIRE_POSTGRES is set" >&2; exit 1; \
	else \
		echo "== PostgreSQL leg skipped: no TEST_DATABASE_URL and no server binaries"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrations: $(STAMP)
	$(BIN)/tortoise -c api.db.MIGRATIONS_CONFIG makemigrations

schema: $(STAMP)
	$(BIN)/custos export-schema

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
