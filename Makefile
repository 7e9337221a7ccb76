# govern — two commands for a new user:  make demo  ·  make test
# Everything they need (PostgreSQL server, opa, Python packages) is installed by `make tools`.

SHELL       := /bin/bash
PYTHON      ?= python3
VENV        := .venv
TOOLS       := .tools
OPA_VERSION := v1.22.2
OPA         := $(TOOLS)/bin/opa
REGAL       := $(TOOLS)/bin/regal
REGO_FILES   = $(shell find policies rego_tests examples -name '*.rego' -not -path '*/.govern/*' | sort)
# every line of the platform and example Rego is reached by a test
REGO_COVERAGE := 100

export PATH       := $(CURDIR)/$(TOOLS)/bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export GOVERN_OPA := $(CURDIR)/$(OPA)

.PHONY: help tools system opa regal venv test lint rego-check rego-lint rego-test pytest demo bench bench-fitness clean

help:
	@echo "make demo   install everything, start PostgreSQL + OPA, validate/plan/apply the example mesh"
	@echo "make test   install everything and run every check (Rego and Python, real OPA + PostgreSQL)"
	@echo "make bench  time validate/plan/apply on a synthetic mesh (bench/README.md)"
	@echo "make bench-fitness  time fitness + catalog publish on a synthetic mesh (PRODUCTS=100)"

tools: system opa regal venv

system:
	@scripts/install-system-packages

opa: $(TOOLS)/opa-$(OPA_VERSION).stamp
$(TOOLS)/opa-$(OPA_VERSION).stamp:
	@mkdir -p $(TOOLS)/bin
	@if ! $(OPA) version 2>/dev/null | grep -q "^Version: $(OPA_VERSION:v%=%)$$"; then \
	  echo "building opa $(OPA_VERSION) into $(TOOLS)/bin (about 2 minutes, once)"; \
	  GOBIN=$(CURDIR)/$(TOOLS)/bin GOFLAGS=-mod=mod go install github.com/open-policy-agent/opa@$(OPA_VERSION); \
	fi
	@$(OPA) version | head -1
	@touch $@

# Regal, the Rego linter, pinned in tools/go.mod (built from the module, once)
regal: $(TOOLS)/regal.stamp
$(TOOLS)/regal.stamp: tools/go.mod tools/go.sum
	@mkdir -p $(TOOLS)/bin
	@echo "building regal (pinned in tools/go.mod; about a minute, once)"
	@cd tools && go build -o $(CURDIR)/$(REGAL) github.com/open-policy-agent/regal
	@touch $@

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install --quiet --upgrade pip
	@$(VENV)/bin/python -m pip install --quiet -e '.[dev,datahub]'
	@touch $@

rego-check: opa
	opa check --strict $(REGO_FILES)
	opa fmt --list --fail $(REGO_FILES)

rego-lint: regal
	regal lint policies rego_tests examples

rego-test: opa
	opa test $(REGO_FILES)
	scripts/rego-coverage $(REGO_COVERAGE) $(REGO_FILES)

lint: venv
	$(VENV)/bin/ruff check engine connectors identity cli service scripts bench tests

pytest: tools
	$(VENV)/bin/python -m pytest -q

test: tools lint rego-check rego-lint rego-test pytest

demo: tools
	@scripts/demo

bench: tools
	$(VENV)/bin/python bench/run.py

PRODUCTS ?= 100
bench-fitness: tools
	$(VENV)/bin/python bench/fitness_publish.py --products $(PRODUCTS)

clean:
	rm -rf .demo .pytest_cache build *.egg-info
