# Two entry points: `make demo` and `make test`. Everything else is a helper.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Reinstall when the dependency pins change. torch comes from the CPU wheel pinned in constraints.txt.
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[demo,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	bash scripts/test-services.sh
	$(BIN)/promotion-bot demo --out demo-output

# vLLM's CPU build goes into its own environment (it pins its own torch), cached outside the checkout
# and reused; tests/test_vllm_integration.py runs against it. A failed install fails the target.
test: $(STAMP)
	bash scripts/test-services.sh
	vllm="$$(bash scripts/install-vllm.sh)" && PROMOTION_BOT_VLLM="$$vllm" $(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf demo-output .pytest_cache
