package bench

import "context"

// extraTransports are the transports measured beside gRPC.
func extraTransports(context.Context) ([]Transport, error) { return nil, nil }
