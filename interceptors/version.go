package interceptors

import (
	"context"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// VersionHeader is the response header in which a server names its version
// on every call, also on a refused one, so that a client can say "the server
// is older than this client" when a call fails in a way a version mismatch
// explains.
const VersionHeader = "rexec-version"

// VersionServerOptions sets VersionHeader to version on every call. Put it
// outermost, so that calls refused by auth carry it too. (A call of a
// method the server does not have runs no interceptor: it has no header.)
func VersionServerOptions(version string) []grpc.ServerOption {
	md := metadata.Pairs(VersionHeader, version)
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			_ = grpc.SetHeader(ctx, md) // fails only once headers are sent: never before the handler
			return handler(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			_ = ss.SetHeader(md)
			return handler(srv, ss)
		}),
	}
}

// ServerVersion records the version a server names in its response headers.
// The zero value is ready to use; pass its DialOptions to the connection.
type ServerVersion struct {
	v atomic.Pointer[string]
}

// Get returns the version the server sent, and false when no call has
// received one yet (no call made, the server unreachable, or a server older
// than the header).
func (s *ServerVersion) Get() (string, bool) {
	if p := s.v.Load(); p != nil {
		return *p, true
	}
	return "", false
}

func (s *ServerVersion) record(md metadata.MD) {
	if v := md.Get(VersionHeader); len(v) > 0 {
		s.v.Store(&v[0])
	}
}

// DialOptions returns the client interceptors that record the header of
// every call's response.
func (s *ServerVersion) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			var md metadata.MD
			err := invoker(ctx, method, req, reply, cc, append(opts, grpc.Header(&md))...)
			s.record(md)
			return err
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			cs, err := streamer(ctx, desc, cc, method, opts...)
			if err != nil {
				return nil, err
			}
			return &versionStream{ClientStream: cs, s: s}, nil
		}),
	}
}

// versionStream records the header once the first RecvMsg has returned:
// by then the header has arrived or the stream has ended, so Header does
// not block.
type versionStream struct {
	grpc.ClientStream
	s    *ServerVersion
	once sync.Once
}

func (v *versionStream) RecvMsg(m any) error {
	err := v.ClientStream.RecvMsg(m)
	v.once.Do(func() {
		if md, herr := v.ClientStream.Header(); herr == nil {
			v.s.record(md)
		}
	})
	return err
}
