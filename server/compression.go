package server

import (
	"errors"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding/gzip"
)

// refuseCompressed is rexecd's answer to a compressed request message: an
// error, before anything is inflated. rexec's clients never compress, and
// grpc-go inflates a unary request before any interceptor runs, so a
// gzip-compressed message would let a caller without a token make the
// server inflate 4 MiB from a few KiB. gzip is registered in grpc-go by
// whatever links google.golang.org/grpc/encoding/gzip — rexecd's OTLP
// exporter does, even when tracing is off — and grpc.RPCDecompressor (kept
// throughout gRPC 1.x) takes precedence over registered compressors.
type refuseCompressed struct{}

func (refuseCompressed) Do(io.Reader) ([]byte, error) {
	return nil, errors.New("rexec: compressed requests are not accepted; send them uncompressed")
}

func (refuseCompressed) Type() string { return gzip.Name }

func refuseCompressedOption() grpc.ServerOption {
	return grpc.RPCDecompressor(refuseCompressed{}) //nolint:staticcheck // the one option that overrides a registered compressor
}
