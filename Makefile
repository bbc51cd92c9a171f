# Two commands on a fresh machine:  `make run` (install + pipeline) and `make test`.
CORES ?= 2
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint dry-run-paper clean

$(STAMP): envs/requirements.lock pyproject.toml
	@set -e; py=$$(envs/find-python.sh); \
	  [ -x $(BIN)/python ] || $$py -m venv $(VENV); \
	  $(BIN)/python -m pip install --quiet --upgrade pip; \
	  $(BIN)/python -m pip install --quiet -r envs/requirements.lock; \
	  $(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(ARGS)

lint: $(STAMP)
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules

dry-run-paper: $(STAMP)
	$(BIN)/snakemake -n --quiet --configfile config/paper.yaml

clean:
	rm -rf results logs .snakemake
