# The two commands of the README: `make demo` and `make test`. Both install into .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
DEMO ?= demo
DB ?= $(DEMO)/degae.duckdb
# No environment here: degae-tools sets its own quiet defaults (Prefect analytics off, TensorFlow's
# C++ logging down), so the README's commands behave the same typed by hand.

.PHONY: install demo test r-limma chromium clean

# The venv's own pip: a newer one prints setuptools' editable-install notices as warnings.
$(BIN)/degae-tools: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/degae-tools

# R's limma (Debian's r-bioc-limma) for the parity tests: installed with apt when we are root.
r-limma:
	@Rscript -e 'suppressMessages(library(limma))' >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ]; then \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends r-bioc-limma >/dev/null \
	      || echo "R limma could not be installed: the R parity tests will skip"; \
	    else echo "R limma missing: sudo apt-get install --no-install-recommends r-bioc-limma"; fi; }

# Headless Chromium (and a font) for the report's browser checks: installed with apt when we are root.
chromium:
	@command -v chromium >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ]; then \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null \
	      || echo "Chromium could not be installed: the report's browser checks will skip"; \
	    else echo "Chromium missing: sudo apt-get install --no-install-recommends chromium"; fi; }

demo: install
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(BIN)/degae-tools simulate $(DEMO)/compendium --datasets 200 --genes 5000 --go-terms 800 --seed 1
	$(BIN)/degae-tools ingest $(DEMO)/compendium --db $(DB)
	$(BIN)/degae-tools de --db $(DB)
	$(BIN)/degae-tools enrich --db $(DB)
	$(BIN)/degae-tools train --db $(DB) --neurons 256 --layers 2 --epochs 30 --representation magnitude \
	  --model-dir $(DEMO)/model
	$(BIN)/degae-tools predict --db $(DB) --model $(DEMO)/model
	$(BIN)/degae-tools attribute --db $(DB) --model $(DEMO)/model --gmt $(DEMO)/term_genes.gmt \
	  --validate --ground-truth $(DEMO)/compendium/ground_truth/perturbations.tsv
	$(BIN)/degae-tools search --db $(DB) --neurons 10,100,400 --layers 1-3 --n-trials 4 --folds 2 \
	  --epochs 10 --representation magnitude --plot-dir $(DEMO)/figures
	$(BIN)/degae-tools reduce --db $(DB) --model $(DEMO)/model --out $(DEMO)/figures
	$(BIN)/degae-tools report --db $(DB) --out $(DEMO)/report.html
	$(BIN)/degae-tools sql "SELECT exclusion_reason, count(*) AS datasets FROM core.dataset_inclusion GROUP BY ALL ORDER BY 2 DESC" --db $(DB)
	@echo "report: $(DEMO)/report.html   warehouse: $(DB)"

# Two pytest-xdist workers, each running whole test files (a file's fixtures are built once).
test: install r-limma chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

clean:
	rm -rf $(DEMO)
