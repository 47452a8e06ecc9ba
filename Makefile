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
# For the real-data targets: where documents come from and which trainer config to use.
DOCS ?= $(OUT)/refined
VOCAB ?= 32000
CONFIG ?= tiny
PROMPT ?= The
ARGS ?=

.PHONY: help venv run test bench bench-all sample-warc assets tokenizer shards train sample \
        clean-out clean ablation dataflow-template dataflow-run schedule cost-estimate infra-lint report

help:
	@echo "make run     - the whole pipeline on the bundled sample ($(SAMPLE_WARC)) into $(OUT)/"
	@echo "make test    - the test suite (uses ../shared/data when present)"
	@echo "make bench   - extract benchmark (pages/CPU-s, 1 vs 2 workers); make bench-all for every benchmark"
	@echo "make tokenizer DOCS=dir VOCAB=32000 - train a byte-level BPE on Parquet documents -> $(OUT)/tokenizer.json"
	@echo "make shards DOCS=dir  - tokenize Parquet documents with $(OUT)/tokenizer.json -> $(OUT)/shards"
	@echo "make train CONFIG=tiny|gpt2-124m ARGS='key=value ...' - train on $(OUT)/shards -> $(OUT)/run"
	@echo "make sample PROMPT='...' - generate text from $(OUT)/run"
	@echo "make report  - $(OUT)/report.html + datacard.md: what the run in $(OUT)/ did (RUN=dir for another run)"
	@echo "make ablation - raw vs filtered vs full: same GPT, same tokens, 3 seeds, bits/byte -> $(OUT)/ablation"
	@echo "make assets  - download the LDNOOBW word lists for the toxicity filter (needs network)"
	@echo "make dataflow-template PROJECT= REGION= BUCKET= - build and publish the Dataflow Flex Template"
	@echo "make dataflow-run SNAPSHOT=latest PROJECT= REGION= BUCKET= [MAX_WARCS=] - launch it once"
	@echo "make schedule PROJECT= REGION= BUCKET= [APPLY=1] - terraform plan (apply) buckets, accounts, monthly job"
	@echo "make cost-estimate - project the cost of one full snapshot on Dataflow from the benchmarks"
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

bench-all: bench
	$(PY) bench/bench_tokenize.py
	$(PY) bench/bench_minhash.py
	$(PY) bench/bench_dedup.py speed
	$(PY) bench/bench_pii.py
	$(PY) bench/bench_refine.py
	$(PY) bench/bench_trainer.py

assets: $(STAMP)
	bash scripts/assets.sh "$(PY)" assets/badwords

tokenizer: $(STAMP)
	$(PY) -m tokenization train-tokenizer --input $(DOCS) --vocab-size $(VOCAB) --out $(OUT)/tokenizer.json

shards: $(STAMP)
	$(PY) -m pipelines tokenize --input $(DOCS) --tokenizer $(OUT)/tokenizer.json --output $(OUT)/shards --overwrite

train: $(STAMP)
	$(PY) -m trainer train --data $(OUT)/shards --config configs/train/$(CONFIG).yaml --out $(OUT)/run $(ARGS)

sample: $(STAMP)
	$(PY) -m trainer sample --ckpt $(OUT)/run --prompt "$(PROMPT)" --max-new-tokens 100 --seed 1

report: $(STAMP)
	$(PY) -m pipelines report --run $(or $(RUN),$(OUT))

ablation: $(STAMP)
	@bash scripts/ablation.sh "$(PY)" "$(OUT)/ablation"

sample-warc: $(STAMP)
	$(PY) samples/make_sample.py --out $(SAMPLE_WARC)

dataflow-template: $(STAMP)
	@PROJECT="$(PROJECT)" REGION="$(REGION)" BUCKET="$(BUCKET)" bash scripts/dataflow.sh template

dataflow-run:
	@SNAPSHOT="$(SNAPSHOT)" PROJECT="$(PROJECT)" REGION="$(REGION)" BUCKET="$(BUCKET)" MAX_WARCS="$(MAX_WARCS)" \
	  SOURCE="$(SOURCE)" TOKENIZER="$(TOKENIZER)" STAGES="$(STAGES)" CONFIG="$(DATAFLOW_CONFIG)" FLEXRS="$(FLEXRS)" \
	  bash scripts/dataflow.sh run

schedule:
	@PROJECT="$(PROJECT)" REGION="$(REGION)" BUCKET="$(BUCKET)" APPLY="$(APPLY)" FLEXRS="$(FLEXRS)" \
	  SCHEDULE="$(SCHEDULE)" MAX_WARCS="$(MAX_WARCS)" bash scripts/dataflow.sh schedule

# Formatting of the Terraform files (needs terraform on PATH; not part of make test).
infra-lint:
	@command -v terraform >/dev/null || { echo "error: terraform not found on PATH; install it to check infra/terraform" >&2; exit 2; }
	terraform fmt -check -diff infra/terraform

cost-estimate: $(STAMP)
	@PY="$(PY)" COST_ARGS="$(COST_ARGS)" bash scripts/dataflow.sh cost-estimate

clean-out:
	rm -rf $(OUT)

clean: clean-out
	rm -rf $(VENV)
