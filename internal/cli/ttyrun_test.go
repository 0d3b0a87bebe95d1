package cli_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"
)

// ttyRun is the testscript command
//
//	ttyrun [-rows N] [-cols N] [-status N] SCRIPT CMD [ARG...]
//
// which runs CMD on a new pseudo-terminal as a user's terminal would (CMD is
// the session leader, the terminal its controlling tty), and drives it with
// SCRIPT, one step a line:
//
//	expect REGEXP          wait for output matching REGEXP (after the last match)
//	send "TEXT"            type TEXT (a Go string literal: "\x03" is Ctrl-C)
//	resize ROWS COLS       resize the terminal (CMD gets SIGWINCH)
//	retry "TEXT" REGEXP    type TEXT until output matches REGEXP (a resize
//	                       and a keystroke race on CMD's side; this waits it out)
//
// Then it waits for CMD to exit with -status (0 by default), checks that CMD
// left the terminal's modes as it found them, and writes what the terminal
// showed to stdout, for the script's stdout checks. Every wait is bounded.
func ttyRun(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("ttyrun: use -status instead of !")
	}
	fs := flag.NewFlagSet("ttyrun", flag.ContinueOnError)
	rows := fs.Int("rows", 24, "terminal rows")
	cols := fs.Int("cols", 80, "terminal columns")
	want := fs.Int("status", 0, "the exit status CMD must have")
	if err := fs.Parse(args); err != nil || fs.NArg() < 2 {
		ts.Fatalf("usage: ttyrun [-rows N] [-cols N] [-status N] SCRIPT CMD [ARG...]")
	}
	steps := strings.Split(strings.TrimSpace(ts.ReadFile(fs.Arg(0))), "\n")
	path, err := lookPath(ts, fs.Arg(1))
	ts.Check(err)

	ptmx, tty, err := pty.Open()
	ts.Check(err)
	defer ptmx.Close()
	ts.Check(pty.Setsize(ptmx, &pty.Winsize{Rows: uint16(*rows), Cols: uint16(*cols)}))
	before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	ts.Check(err)

	cmd := exec.Command(path, fs.Args()[2:]...)
	cmd.Dir = ts.Getenv("WORK")
	cmd.Env = scriptEnv(ts)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	ts.Check(cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	screen := &transcript{}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			screen.write(buf[:n])
			if err != nil {
				return // EIO once the last holder of the terminal closed it
			}
		}
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
		tty.Close()
		<-readDone
	}

	for i, step := range steps {
		word, rest, _ := strings.Cut(strings.TrimSpace(step), " ")
		rest = strings.TrimSpace(rest)
		fail := func(format string, args ...any) {
			stop()
			ts.Logf("terminal showed:\n%s", screen.String())
			ts.Fatalf("ttyrun: step %d (%s): %s", i+1, step, fmt.Sprintf(format, args...))
		}
		switch word {
		case "", "#":
		case "expect":
			if !screen.expect(regexp.MustCompile(rest), 20*time.Second) {
				fail("no match in 20s")
			}
		case "send":
			text, err := strconv.Unquote(rest)
			if err != nil {
				fail("want a Go string literal: %v", err)
			}
			if _, err := ptmx.Write([]byte(text)); err != nil {
				fail("%v", err)
			}
		case "resize":
			var r, c uint16
			if _, err := fmt.Sscan(rest, &r, &c); err != nil {
				fail("want ROWS COLS: %v", err)
			}
			if err := pty.Setsize(ptmx, &pty.Winsize{Rows: r, Cols: c}); err != nil {
				fail("%v", err)
			}
		case "retry":
			lit, re, err := cutQuoted(rest)
			if err != nil {
				fail("%v", err)
			}
			rx := regexp.MustCompile(re)
			ok := false
			for range 100 {
				if _, err := ptmx.Write([]byte(lit)); err != nil {
					fail("%v", err)
				}
				if ok = screen.expect(rx, 200*time.Millisecond); ok {
					break
				}
			}
			if !ok {
				fail("no match after 100 tries")
			}
		default:
			fail("unknown step %q", word)
		}
	}

	var werr error
	select {
	case werr = <-exited:
	case <-time.After(30 * time.Second):
		stop()
		ts.Logf("terminal showed:\n%s", screen.String())
		ts.Fatalf("ttyrun: %s did not exit in 30s after the script", fs.Arg(1))
	}
	after, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	ts.Check(err)
	tty.Close()
	<-readDone
	fmt.Fprint(ts.Stdout(), screen.String())
	status := 0
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		status = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			status = 128 + int(ws.Signal())
		}
	} else if werr != nil {
		ts.Fatalf("ttyrun: %v", werr)
	}
	if status != *want {
		ts.Logf("terminal showed:\n%s", screen.String())
		ts.Fatalf("ttyrun: %s exited %d, want %d", fs.Arg(1), status, *want)
	}
	if before.Iflag != after.Iflag || before.Oflag != after.Oflag || before.Lflag != after.Lflag || before.Cflag != after.Cflag || before.Cc != after.Cc {
		ts.Fatalf("ttyrun: %s left the terminal's modes changed (lflag %#x, was %#x): raw mode not restored", fs.Arg(1), after.Lflag, before.Lflag)
	}
}

// transcript is what the terminal showed, with a cursor after the last match.
type transcript struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	seen int
}

func (t *transcript) write(b []byte) {
	t.mu.Lock()
	t.buf.Write(b)
	t.mu.Unlock()
}

func (t *transcript) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}

// expect waits up to d for rx to match past the cursor, then moves it.
func (t *transcript) expect(rx *regexp.Regexp, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		t.mu.Lock()
		loc := rx.FindIndex(t.buf.Bytes()[t.seen:])
		if loc != nil {
			t.seen += loc[1]
		}
		t.mu.Unlock()
		if loc != nil {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cutQuoted splits `"TEXT" REST` into TEXT unquoted and REST.
func cutQuoted(s string) (string, string, error) {
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", fmt.Errorf("want a Go string literal first: %w", err)
	}
	text, _ := strconv.Unquote(q)
	return text, strings.TrimSpace(s[len(q):]), nil
}

// scriptEnv is the script's environment for a command ttyrun starts.
func scriptEnv(ts *testscript.TestScript) []string {
	env := []string{"TERM=xterm-256color"}
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "WORK", "REXEC_ADDR", "REXEC_KEY_FILE", "XDG_CONFIG_HOME", "GORACE"} {
		env = append(env, k+"="+ts.Getenv(k))
	}
	return env
}

// lookPath finds name in the script's PATH (where testscript put rexec).
func lookPath(ts *testscript.TestScript, name string) (string, error) {
	for _, dir := range filepath.SplitList(ts.Getenv("PATH")) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("ttyrun: %s not in the script's PATH", name)
}
