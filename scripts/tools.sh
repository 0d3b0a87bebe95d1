#!/usr/bin/env bash
# Builds the pinned tools (tools/go.mod) into .bin/: buf, grpcurl,
# grpc-health-probe and the two protoc plugins. Nothing comes from outside the
# Go module proxy.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .bin
go -C tools build -o ../.bin/ \
  github.com/bufbuild/buf/cmd/buf \
  github.com/fullstorydev/grpcurl/cmd/grpcurl \
  github.com/grpc-ecosystem/grpc-health-probe \
  google.golang.org/grpc/cmd/protoc-gen-go-grpc \
  google.golang.org/protobuf/cmd/protoc-gen-go
