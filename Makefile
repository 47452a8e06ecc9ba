# Two commands on a fresh machine:  make run  |  make test
# The virtual environment is created and filled from requirements.lock on first use; later
# calls only check a stamp file, so they cost nothing when the lock has not changed.
SHELL := /bin/bash
PYTHON_SYS ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUT ?= out
SAMPLE_WARC := samples/sample.warc.gz
PYTEST_ARGS ?=

.PHONY: help venv run test bench sample-warc clean-out clean

help:
	@echo "make run     - the whole pipeline on the bundled sample ($(SAMPLE_WARC)) into $(OUT)/"
	@echo "make test    - the test suite (uses ../shared/data when present)"
	@echo "make bench   - benchmarks (figures printed; see BENCHMARKS.md)"
	@echo "make venv    - create/update $(VENV) from requirements.lock"
	@echo "make sample-warc - regenerate $(SAMPLE_WARC) from samples/make_sample.py"
	@echo "make clean   - remove $(OUT)/ and $(VENV)/"

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml scripts/bootstrap.sh
	@bash scripts/bootstrap.sh "$(PYTHON_SYS)" "$(VENV)"
	@touch $(STAMP)

run: $(STAMP)
	@bash scripts/run_sample.sh "$(PY)" "$(OUT)" "$(SAMPLE_WARC)"

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/bench_extract.py

sample-warc: $(STAMP)
	$(PY) samples/make_sample.py --out $(SAMPLE_WARC)

clean-out:
	rm -rf $(OUT)

clean: clean-out
	rm -rf $(VENV)
