# Two commands on a fresh machine (python3, pip, gcc, make):
#   make demo   set up, ingest the bundled example files through Dagster, show what was stored
#   make test   set up and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed

.PHONY: setup demo test dev clean

$(STAMP): pyproject.toml bam_assets/reading/bam/_records.c bam_assets/stats/_cycle_sums.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,lake,deploy]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/bam-assets ingest bam_assets/example_data
	$(BIN)/bam-assets list
	$(BIN)/bam-assets view -h synthetic_paired.bam | head -n 12
	$(BIN)/bam-assets flagstat synthetic_paired.bam

# pytest exits 5 when it collected no tests; make treats any non-zero exit as a failure.
test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The UI and the daemon (sensors, schedules, the run queue) at http://127.0.0.1:$(DAGSTER_PORT).
# A $(DAGSTER_HOME) without a dagster.yaml gets the project's (run queue, the duckdb_writer pool,
# telemetry off); one that has its own keeps it.
DAGSTER_HOME ?= $(CURDIR)/.dagster_home
DAGSTER_PORT ?= 3000
dev: $(STAMP)
	mkdir -p "$(DAGSTER_HOME)"
	test -f "$(DAGSTER_HOME)/dagster.yaml" || cp dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"
	DAGSTER_HOME="$(DAGSTER_HOME)" $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(DAGSTER_PORT)

clean:
	rm -rf $(VENV) data .dagster_home
