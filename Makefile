# appdeploy.ecs: the three commands (see README.md). Everything runs on 127.0.0.1.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv up demo test down status lint sanity unit molecule integration build clean

help:
	@echo "make demo   - set up, start the local stack, run site.yml against inventories/local"
	@echo "make test   - set up, start the local stack, run every test, print one summary, stop what it started"
	@echo "make down   - stop the local stack"

$(STAMP): requirements.txt test-requirements.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "make: installing pinned Python packages into $(VENV) (log: $(VENV)/pip.log)"
	@$(BIN)/pip install -q --upgrade pip >$(VENV)/pip.log 2>&1
	@$(BIN)/pip install -q -r test-requirements.txt >>$(VENV)/pip.log 2>&1 || { tail -20 $(VENV)/pip.log; exit 1; }
	@mkdir -p .collections/ansible_collections/appdeploy
	@ln -sfn ../../.. .collections/ansible_collections/appdeploy/ecs
	@touch $(STAMP)

venv: $(STAMP)

up: venv
	@scripts/local-stack up

demo: up
	@source .local-stack/env && $(BIN)/ansible-playbook site.yml

test: venv
	@scripts/run-tests $(TESTS)

down:
	@scripts/local-stack down

status:
	@scripts/local-stack status

lint: venv
	@scripts/run-tests lint

sanity: venv
	@scripts/run-tests sanity

unit: venv
	@scripts/run-tests unit

molecule: venv
	@scripts/run-tests molecule

build: venv
	@$(BIN)/ansible-galaxy collection build --force --output-path .cache/dist .

clean: down
	@rm -rf .cache tests/output .pytest_cache
