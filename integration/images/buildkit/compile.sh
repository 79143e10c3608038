#!/usr/bin/env bash
# Compiles BuildKit's buildkitd and buildctl, at the pinned version below,
# from the Go module proxy into OUT_DIR (static, CGO_ENABLED=0). build.sh runs
# it in the background while the base image is made, then puts the binaries
# in dind-executor.local/buildkit:test with Debian's runc taken from base.
#
# Usage: compile.sh OUT_DIR
# Environment: GO (default: go on PATH, else /usr/local/go/bin/go).
#
# v0.13.2 is the BuildKit of Debian trixie's docker-buildx (0.13.1) era, and
# about a third cheaper to compile than the newest (~1000 packages instead of
# ~1360): this is the one expensive step of a cold build.sh run. Changing the
# version changes this file and so the image's rev.
set -euo pipefail
readonly BUILDKIT_VERSION=v0.13.2
readonly MODULE=github.com/moby/buildkit

out=${1:?usage: compile.sh OUT_DIR}
go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
[[ -x $go ]] || { echo "compile.sh: no Go toolchain (set GO or put go on PATH)" >&2; exit 2; }

# The module's own go.mod and go.sum decide every dependency (its exclude
# directives make `go install module@version` refuse it, so it is built as
# the main module from the module cache; -mod=mod because its zip carries a
# vendor/modules.txt without the vendored sources).
export GOFLAGS=-mod=mod GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0
cd /
dir=$("$go" mod download -json "$MODULE@$BUILDKIT_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -n $dir && -d $dir ]] || { echo "compile.sh: go mod download $MODULE@$BUILDKIT_VERSION gave no directory" >&2; exit 1; }
cd "$dir"
# buildx reads `buildkitd --version` as four fields: name, package, version, revision.
ldflags="-s -w -X $MODULE/version.Package=$MODULE -X $MODULE/version.Version=$BUILDKIT_VERSION -X $MODULE/version.Revision=module-proxy"
# -N -l (no optimisation, no inlining): a fifth less compile time (3.6
# against 4.4 user-minutes here) for test binaries 15 MB larger.
echo "+ go build $MODULE@$BUILDKIT_VERSION ./cmd/buildkitd ./cmd/buildctl ($("$go" env GOVERSION))"
"$go" build -trimpath -gcflags=all='-N -l' -ldflags "$ldflags" -o "$out/" ./cmd/buildkitd ./cmd/buildctl
