// Package runner starts commands and pumps their events to a sink. It is the
// one piece of rexec that touches processes, and it knows nothing of gRPC or
// sockets: each transport adapts the runner's events to its own wire.
//
// A transport makes one Runner per server and calls Start then Wait per command:
//
//	r := runner.New(runner.Options{MaxConcurrent: 64})
//	p, err := r.Start(ctx, runner.Spec{Shell: "echo hi"})
//	if err != nil { ... }            // a bad spec or a limit: no process started
//	res, err := p.Wait(sink)         // Started, Output..., Exited go to sink
//
// Every command leads its own process group. When ctx is done (the caller
// went away, the spec's timeout passed, or the server is shutting down — see
// ErrShutdown) the group gets SIGTERM, then SIGKILL after Options.KillGrace;
// a terminal is hung up first. When the command exits but something it
// started still holds its output open Options.DrainGrace later, the group is
// killed and the result says OutputIncomplete. All of this runs in the
// command's own lifetime loop, which never waits for the sink: a client that
// reads nothing cannot hold a command past its timeout, and the command's slot
// is freed (group killed, leader reaped, audit line written) before Exited is
// delivered. The leader is reaped only after its group was killed, so a
// signal never reaches another command through a reused pid. No process of
// the group outlives the command's end.
//
// With Options.Cgroups, every command is also born in a cgroup of its own
// (cgroup_linux.go: pure cgroup v2, or the hybrid layout with v1 memory,
// pids and cpu), which its end kills whole and waits to be empty, so that
// a process that left the group dies too; its Spec.Limits are the cgroup's
// limits, and Result.Usage what the kernel counted. Every command starts as
// a login does (env.go): as Spec.User or this process's user, in its home,
// with a login's environment and none of this process's. Close the Runner
// to remove its cgroups:
//
//	r := runner.New(runner.Options{Cgroups: runner.CgroupsAuto})
//	defer r.Close()
package runner
