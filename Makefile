# The two commands a newcomer needs: `make demo` and `make test`.
# Everything else here is what those two are made of.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install up down demo test unit lint bench clean

install:
	scripts/bootstrap.sh

up: install
	scripts/kafka.sh start
	scripts/redis.sh start

down:
	-scripts/kafka.sh stop
	-scripts/redis.sh stop
	-scripts/redis.sh cluster-stop

demo: up
	$(BIN)/votescore demo

test: up
	scripts/redis.sh cluster-start
	$(BIN)/ruff check streams models tests bench
	$(BIN)/pytest -q

unit: install
	$(BIN)/pytest -q tests/unit

lint: install
	$(BIN)/ruff check streams models tests bench
	$(BIN)/ruff format --check streams models tests bench

bench: up
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/throughput.py

clean: down
	rm -rf .local
