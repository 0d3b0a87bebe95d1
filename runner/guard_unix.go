//go:build unix

package runner

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
)

// guardScript runs in the guard process. It keeps the set of live command
// groups that its parent reports on fd 3 ("+ PGID", "- PGID"), and the
// cgroup directories of its runners ("c DIR"). When fd 3 reaches EOF — the
// parent closed it, or the kernel did because the parent died, however it
// died — it sends SIGKILL to every group still in the set, and to every
// process in those cgroups (cgroup.kill), which reaches processes that
// left their group too.
const guardScript = `trap '' HUP INT
g=' '
c=''
while read -r op id <&3; do
  case $op in
  +) g="$g$id " ;;
  -) case $g in *" $id "*) g="${g%% $id *} ${g#* $id }" ;; esac ;;
  c) c="$c$id
" ;;
  esac
done
for id in $g; do kill -s KILL -- "-$id" 2>/dev/null; done
printf %s "$c" | while IFS= read -r d; do [ -n "$d" ] && echo 1 2>/dev/null >"$d/cgroup.kill"; done`

// Guard is a small watchdog process that kills the process groups of a
// server's running commands when the server dies without cleaning up
// (SIGKILL, the OOM killer, a runtime crash), which it cannot do itself.
// It learns of the death from the kernel: its end of a pipe reaches EOF
// when the server's end is closed, whatever killed the server. Unlike
// SysProcAttr.Pdeathsig it reaches the whole group, not just the leader,
// and does not depend on which OS thread forked the command.
//
//	g, err := runner.StartGuard()
//	defer g.Close()
//	r := runner.New(runner.Options{Guard: g})
//
// The guard costs one /bin/sh process per server and a few bytes written
// per command. A nil *Guard does nothing.
type Guard struct {
	mu  sync.Mutex
	w   *os.File
	cmd *exec.Cmd
}

// StartGuard starts the guard process. Like New, it first marks the
// descriptors this process inherited close-on-exec, so the guard holds none.
func StartGuard() (*Guard, error) {
	closeInheritedOnExec()
	r, w, err := os.Pipe() // close-on-exec: no command inherits w
	if err != nil {
		return nil, fmt.Errorf("guard pipe: %w", err)
	}
	cmd := exec.Command("/bin/sh", "-c", guardScript)
	cmd.ExtraFiles = []*os.File{r}
	// Its own group: a terminal's Ctrl-C to the server's group, or the
	// server's kill of a command group, never reaches it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("start guard: %w", err)
	}
	return &Guard{w: w, cmd: cmd}, nil
}

// Pid is the guard process's pid.
func (g *Guard) Pid() int { return g.cmd.Process.Pid }

func (g *Guard) add(pgid int)    { g.send('+', pgid) }
func (g *Guard) remove(pgid int) { g.send('-', pgid) }

// killCgroup has the guard kill every process in the cgroup dir (and its
// children) when it fires: a runner's directory of command cgroups.
func (g *Guard) killCgroup(dir string) {
	if g == nil || dir == "" || strings.ContainsAny(dir, "\n\x00") {
		return
	}
	g.write("c " + dir + "\n")
}

func (g *Guard) send(op byte, pgid int) {
	if g == nil || pgid <= 0 {
		return
	}
	g.write(fmt.Sprintf("%c %d\n", op, pgid))
}

func (g *Guard) write(line string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.w != nil {
		// A guard that died makes this fail with EPIPE: the command runs on,
		// unguarded, as it would without a guard.
		_, _ = io.WriteString(g.w, line)
	}
}

// Close ends the guard, which first kills the groups it still holds (none,
// once every command has been waited for), and waits for it to exit.
func (g *Guard) Close() error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	w := g.w
	g.w = nil
	g.mu.Unlock()
	if w == nil {
		return nil
	}
	w.Close()
	return g.cmd.Wait()
}
