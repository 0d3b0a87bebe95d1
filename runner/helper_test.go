package runner_test

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// daemonSecret names a variable of the test process's environment: the
// server's, which commands must not inherit.
const daemonSecret = "REXEC_TEST_DAEMON_SECRET"

// helperEnv makes the test binary, run as a command, a known workload
// instead of the tests (helperMain): "hog MiB" allocates and touches MiB
// mebibytes, then sleeps; "spin D" runs a busy loop for the wall time D.
const helperEnv = "REXEC_RUNNER_HELPER"

// helper is the spec of a command that runs the test binary as workload w.
func helperArgv(w ...string) []string { return append([]string{os.Args[0]}, w...) }

// helperMain runs the workload helperEnv names, if any, and reports
// whether it did (the process then exits).
func helperMain() bool {
	if os.Getenv(helperEnv) != "1" {
		return false
	}
	args := os.Args[1:]
	var keep [][]byte
	touch := func(mib int) {
		for range mib {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			keep = append(keep, b)
		}
	}
	switch args[0] {
	case "hog":
		n, _ := strconv.Atoi(args[1])
		touch(n)
		fmt.Println("survived")
		time.Sleep(time.Hour)
	case "spin":
		d, _ := time.ParseDuration(args[1])
		for end := time.Now().Add(d); time.Now().Before(end); {
		}
	}
	_ = len(keep)
	os.Exit(0)
	return true
}
