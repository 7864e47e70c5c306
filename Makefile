# Roster developer entry points. Nothing here needs Docker: .ci/ensure-*.sh use a running
# server, else Docker Compose when an engine is available, else a local one.
SHELL := bash
.DEFAULT_GOAL := help

# Tests clone their databases on the server DATABASE_URL points at (any database name there).
ifdef DATABASE_URL
export TEST_DATABASE_URL ?= $(DATABASE_URL)
endif

.PHONY: help db redis migrate run test openapi-check fmt lint

help: ## List the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

db: ## Make sure PostgreSQL answers (DATABASE_URL, 127.0.0.1:5432, docker compose, or .pgdata/)
	@bash .ci/ensure-postgres.sh

redis: ## Make sure Redis answers on 127.0.0.1:6379
	@bash .ci/ensure-redis.sh

migrate: db ## Apply sql/migrations to DATABASE_URL, creating the database if missing
	cargo run --quiet -- migrate

# Development defaults for `make run` only; set them in the environment to override.
run: export JWT_SECRET ?= roster-dev-secret-change-me-0123456789abcdef
run: export REDIS_URL ?= redis://127.0.0.1:6379
# A fresh secret per run authenticates this instance's cache entries (README, "Security").
run: export CACHE_KEY ?= $(shell head -c 32 /dev/urandom | base64)
run: export BIND_ADDR ?= 127.0.0.1:8080

# The API serves through a login of its own, a member of roster_app only (README, "Database
# logins"): DATABASE_APP_URL if set, else .ci/ensure-app-login.sh creates roster_api. Access
# tokens are signed with TOKEN_SIGNING_KEY if set, else a development key kept in target/.
run: db redis ## Migrate, seed a demo tenant if empty, create the API's login, print a curl line, and serve on BIND_ADDR
	cargo build --release --quiet
	./target/release/roster demo
	if [ -z "$${DATABASE_APP_URL:-}" ]; then \
		DATABASE_APP_URL=$$(bash .ci/ensure-app-login.sh) || exit 1; \
		export DATABASE_APP_URL; \
	fi; \
	if [ -z "$${TOKEN_SIGNING_KEY:-}" ]; then \
		[ -s target/dev-token-signing-key.pem ] || \
			(umask 077 && ./target/release/roster keys generate > target/dev-token-signing-key.pem); \
		export TOKEN_SIGNING_KEY=target/dev-token-signing-key.pem; \
	fi; \
	exec ./target/release/roster serve

test: db redis ## Run every test (unit and integration), then the OpenAPI checks with outside tools
	cargo test
	bash .ci/openapi-check.sh

openapi-check: db redis ## Validate, generate a client from, fuzz (schemathesis) and render (Chromium) the served API document
	bash .ci/openapi-check.sh

# BENCH_DURATION (15 s) and BENCH_WARMUP (3 s) per scenario; the others are in .ci/bench/run.sh.
.PHONY: bench
bench: db redis ## Benchmark the release server with wrk, authorization cache off and on (about 5 min)
	cargo build --release
	bash .ci/bench/run.sh

fmt: ## Format the code
	cargo fmt --all

lint: ## Check formatting and clippy lints
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
