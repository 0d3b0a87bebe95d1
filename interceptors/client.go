package interceptors

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// ClientOptions returns dial options that sign every call with key: a fresh
// token (new nonce, current time) minted for the call's full method name and
// for authority, which they also make the connection's :authority, so that
// what is signed is what is sent.
func ClientOptions(key *Key, authority string) []grpc.DialOption {
	sign := func(ctx context.Context, method string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, MetadataKey, Mint(key, method, authority, time.Now()))
	}
	return []grpc.DialOption{
		grpc.WithAuthority(authority),
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return invoker(sign(ctx, method), method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			return streamer(sign(ctx, method), desc, cc, method, opts...)
		}),
	}
}
