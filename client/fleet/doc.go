// Package fleet runs one command on many rexec servers at once: the engine
// behind rexec -H. Targets are resolved from patterns (node[01-20]:50051),
// the config file's hosts and @groups, hosts files and dns:///NAME:PORT
// (every A and AAAA record); Run keeps a sliding window of them in flight,
// one gRPC connection each, and hands each target's output and result to
// an Output, which never mixes two targets' lines.
//
//	r := &fleet.Resolver{Config: cfg}
//	targets, err := r.Resolve(ctx, []string{"node[01-20]", "@web"}, nil)
//	d := &fleet.Dialer{Defaults: fleet.Credentials{KeyFile: path}}
//	out := &fleet.Lines{Stdout: os.Stdout, Stderr: os.Stderr}
//	results := fleet.Run(ctx, targets, &rexecv1.RunRequest{Shell: "uptime"}, out,
//		fleet.Options{Window: 64, ConnectTimeout: 10 * time.Second, Dial: d.Dial})
//	os.Exit(fleet.ExitStatus(ctx, results))
//
// The outputs: Lines (each line prefixed "NAME: ", written whole), Gather
// (clush -b: one block per set of identical results), Dir (NAME.out,
// NAME.err, NAME.status, each as a single-target run prints it) and JSON
// (one record per target); Tee combines them. ExitStatus, Summarize and
// WriteFailedFile give the run's exit status, its summary and the
// targets to try again.
package fleet
