# make demo | make test | make bench — each creates .venv itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Exactly this torch, installed before the package so pip never resolves torch itself.
TORCH  := torch==2.13.0

.PHONY: venv demo test bench data clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

data:
	bash scripts/ensure-data.sh

demo: $(STAMP) data
	$(BIN)/freqprint demo --out demo-output

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP) data
	$(BIN)/freqprint bench core --out bench-results/core.json
	$(BIN)/freqprint bench calibration --out bench-results/calibration.json
	test -f demo-output/owner.safetensors || $(MAKE) demo
	$(BIN)/freqprint bench frequencies --source demo-output/owner.safetensors --out bench-results/frequencies.json
	$(BIN)/freqprint bench tracing --profile quick --method all --out bench-results/tracing
	$(BIN)/freqprint bench cost --method ours,rs,mw --out bench-results/cost.json

clean:
	rm -rf $(VENV) demo-output bench-results .pytest_cache
