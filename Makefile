# Two commands on a fresh machine (python3, pip, gcc, make):
#   make demo   set up, ingest the bundled example files through Dagster, show what was stored
#   make test   set up and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed

.PHONY: setup demo test dev clean fuzz fuzz-ci fuzz-setup

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
# A $(DAGSTER_HOME) without a dagster.yaml gets the project's (run queue, two writers at once,
# telemetry off); one that has its own keeps it.
DAGSTER_HOME ?= $(CURDIR)/.dagster_home
DAGSTER_PORT ?= 3000
dev: $(STAMP)
	mkdir -p "$(DAGSTER_HOME)"
	test -f "$(DAGSTER_HOME)/dagster.yaml" || cp dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"
	DAGSTER_HOME="$(DAGSTER_HOME)" $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(DAGSTER_PORT)

clean:
	rm -rf $(VENV) data .dagster_home

# Fuzzing the C decoder (fuzz/README.md): clang-14 and libclang-rt-14-dev (Debian), atheris from
# PyPI installed into build/fuzz/site, not into the virtualenv. `make fuzz FUZZ_SECONDS=3600`
# runs one session (corpus kept in build/fuzz/corpus); `make fuzz-ci` a fixed-seed, fixed-length
# one from the seeds alone, which fails on any finding.
FUZZ_SECONDS ?= 600
FUZZ_RUNS ?= 2000
REAL_DATA ?= ../shared/test-data/real

build/fuzz/site/.installed:
	$(BIN)/pip install --quiet --target build/fuzz/site atheris==3.0.0
	touch $@

fuzz-setup: $(STAMP) build/fuzz/site/.installed
	rm -rf build/fuzz/seeds
	PYTHONPATH=. $(BIN)/python fuzz/make_seeds.py build/fuzz/seeds $(REAL_DATA)

fuzz: fuzz-setup
	nice -n 10 fuzz/run_fuzz.sh $(FUZZ_SECONDS) $${FUZZ_SEED:-$$RANDOM}

fuzz-ci: fuzz-setup
	rm -rf build/fuzz/ci-corpus
	CORPUS=build/fuzz/ci-corpus fuzz/run_fuzz.sh 600 1 -runs=$(FUZZ_RUNS)
