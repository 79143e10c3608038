# A GitLab Runner image that carries dind-executor, built the way the seed
# article builds images: a builder stage with the toolchain and a slim final
# stage that copies only the result.
#
# Base images are build arguments so the image can be built from local
# images on a machine without a registry (the integration tests do that):
#   GO_IMAGE      an image with Go >= 1.26 on PATH
#   RUNNER_IMAGE  an image that already carries gitlab-runner
# The build context must hold the module's dependencies in vendor/ when the
# builder cannot reach a Go module proxy (go mod vendor; -mod=vendor is used
# automatically when vendor/ exists).
ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNNER_IMAGE=gitlab/gitlab-runner:ubuntu-v18.5.0

FROM ${GO_IMAGE} AS builder
WORKDIR /src
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/dind-executor ./cmd/dind-executor

FROM ${RUNNER_IMAGE}
COPY --from=builder /out/dind-executor /usr/local/bin/dind-executor
COPY deploy/config.toml /etc/dind-executor/config.toml
COPY deploy/gitlab-runner-config.toml /etc/gitlab-runner/config.toml.sample
