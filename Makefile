# One path for everyone: `make run` starts the node, `make test` runs every check, CI runs the same.
PYTHON ?= python3
export PYTHON

.PHONY: help install run test lint test-rust test-python bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

install:  ## install Debian packages, Python tools, build the Rust engine and Cython extensions
	scripts/install.sh

run: install  ## set up and start the node on its embedded default (SQLite store seeded with the demo, SIP on 127.0.0.1:5060, web manager on http://127.0.0.1:8080/manage)
	softswitch run

lint:  ## ruff, mypy --strict, stub check, cargo fmt, clippy
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy
	$(PYTHON) -m mypy.stubtest mediacore._core --allowlist .stubtest-allowlist
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

test-rust:  ## Rust unit and integration tests
	cargo test --workspace --locked

test-python:  ## Python tests over loopback
	$(PYTHON) -m pytest

test: install lint test-rust test-python  ## set up, then run every check and test

bench: install  ## relay and transcoding benchmarks against rtpengine (installs rtpengine-daemon)
	scripts/install.sh rtpengine-daemon
	cargo build --release --locked -p rtpload
	mkdir -p artifacts
	$(PYTHON) bench/relay.py --out artifacts/bench-relay.json
	$(PYTHON) bench/transcode.py --out artifacts/bench-transcode.json

clean:
	cargo clean
	rm -rf build mediacore/*.so signaling/**/*.so
