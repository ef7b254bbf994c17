# Two commands do everything on a fresh machine with Python 3.11+ and pip:
#   make run    set up .venv and run the main job (compare systems for a coding model)
#   make test   set up .venv and run the whole test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench calibrate accuracy clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,browser]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/siliconsim compare

test: $(STAMP)
	$(BIN)/python -m pytest tests

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

calibrate: $(STAMP)
	$(BIN)/siliconsim calibrate
	$(BIN)/siliconsim calibrate --training

accuracy: $(STAMP)
	$(BIN)/python scripts/update_readme_accuracy.py

clean:
	rm -rf $(VENV) build src/*.egg-info
