# Roster developer entry points. Nothing here needs Docker: .ci/ensure-*.sh use a running
# server, else Docker Compose when an engine is available, else a local one.
SHELL := bash
.DEFAULT_GOAL := help

# Tests clone their databases on the server DATABASE_URL points at (any database name there).
ifdef DATABASE_URL
export TEST_DATABASE_URL ?= $(DATABASE_URL)
endif

.PHONY: help db redis migrate run test fmt lint

help: ## List the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

db: ## Make sure PostgreSQL answers (DATABASE_URL, 127.0.0.1:5432, docker compose, or .pgdata/)
	@bash .ci/ensure-postgres.sh

redis: ## Make sure Redis answers on 127.0.0.1:6379
	@bash .ci/ensure-redis.sh

migrate: db ## Apply sql/migrations to DATABASE_URL, creating the database if missing
	cargo run --quiet -- migrate

# run: for now only migrates (release build); the HTTP API issue extends it to serve.
run: db redis ## Build in release mode and apply migrations (no HTTP server yet)
	cargo run --release --quiet -- migrate

test: db redis ## Run every test (unit and integration)
	cargo test

fmt: ## Format the code
	cargo fmt --all

lint: ## Check formatting and clippy lints
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
