// Package telemetry is rexecd's metrics and traces, at the edges of the
// server: Prometheus metrics from gRPC interceptors, the auth interceptor's
// refusals, the raw listener's handshakes and the runner's command events
// (NewMetrics, Serve), and OpenTelemetry traces from a gRPC stats handler,
// exported over OTLP (NewTracing). Nothing here runs per output chunk: a
// command's bytes are counted from its Result at its end.
//
//	m := telemetry.NewMetrics(version.String())
//	run := runner.New(runner.Options{Observer: telemetry.NewObserver(m)})
//	srv := server.New(server.Config{Observe: m.ServerOptions(), OnAuthFailure: m.GRPCAuthFailure, …})
//	l := telemetry.Serve(lis, m, false, log) // GET /metrics
//
// rexec (the CLI) links none of this: it only passes a trace context on,
// through the client package.
package telemetry
