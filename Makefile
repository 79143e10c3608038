# The two commands of the README's quick start, and what they need.
GO ?= go

.PHONY: setup demo test unit bin

# Docker Engine running + offline images built (both idempotent).
setup:
	bash integration/setup-engine.sh
	bash integration/images/build.sh

bin:
	CGO_ENABLED=0 $(GO) build -o bin/dind-executor ./cmd/dind-executor

# Runs the seed article's multi-stage image build as a real job, end to end,
# through the runner emulator, and prints the job log.
demo: setup
	$(GO) run ./integration/demo

# Unit and integration tests (the integration tests need a real Engine).
# -trimpath for every build, as the Dockerfile builds: the test binaries,
# the suite's dind-executor and the runner image the Dockerfile test builds
# then share one set of compiled packages (that image's build takes them
# from this machine's Go build cache instead of compiling ~290 packages).
test: setup
	GOFLAGS=-trimpath $(GO) vet ./...
	GOFLAGS=-trimpath $(GO) test -count=1 -timeout 30m ./...

# Tests that need no Docker Engine.
unit:
	$(GO) test -count=1 ./config/... ./stages/... ./executor/... ./cmd/... ./integration/runner/...
