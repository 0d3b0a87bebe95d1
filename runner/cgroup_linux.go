//go:build linux

package runner

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	cgroupsmode "github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cgroupRoot is where the cgroup filesystems are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// cpuPeriod is the CPU bandwidth period, in microseconds: the kernel's
// default, for cgroup v2 and v1 alike.
const cpuPeriod = 100_000

// instanceSeq numbers the runners of this process, for their directories.
var instanceSeq atomic.Uint64

// cgroups is a Runner's cgroup layer. Every command gets a cgroup of its
// own (a cell) in the runner's directory, <parent>/<pid>-<n>, and is born
// in it: the fork goes straight into the v2 cgroup (clone3 with
// CLONE_INTO_CGROUP, Go's SysProcAttr.CgroupFD), so no process of the
// command ever runs outside it. The v2 cgroup is what ends a command
// (cgroup.kill reaches processes that left the process group) and says
// when it is over (cgroup.events: populated).
//
// On the hybrid layout (v2 mounted at /sys/fs/cgroup/unified without
// controllers, memory, pids and cpu as v1 hierarchies beside it) the
// limits live in v1, where clone3 cannot place a child. There the forking
// thread enters the command's v1 cgroups first, forks (a v1 child starts
// in its parent thread's cgroups), and goes back: the command is in its
// v1 cgroups from its first instruction too.
type cgroups struct {
	log     *slog.Logger
	hybrid  bool
	v2mount string // /sys/fs/cgroup, or /sys/fs/cgroup/unified (hybrid)
	dir     string // the runner's v2 directory, absolute

	// hybrid: the v1 hierarchies there are (memory, pids, cpu), the
	// runner's directory in each (relative to its mount), and this
	// process's own cgroups, where a forking thread returns.
	v1subs []cgroup1.Subsystem
	v1dir  map[cgroup1.Name]string
	v1own  map[cgroup1.Name]string

	// The limits the kernel enforces here.
	memory, pids, cpu bool
	missing           []string

	// pool holds cells made ahead, so that a command's start makes none.
	pool    chan *cell
	filling atomic.Bool
	seq     atomic.Uint64
	bg      sync.WaitGroup // the pool's filler and the removal of cells
	closed  atomic.Bool
}

// newCgroups sets up the runner's cgroup directory under parent, or says
// why commands cannot have cgroups here.
func newCgroups(parent string, poolSize int, log *slog.Logger) (*cgroups, error) {
	cg := &cgroups{log: log, v1dir: map[cgroup1.Name]string{}, v1own: map[cgroup1.Name]string{}, pool: make(chan *cell, poolSize)}
	switch cgroupsmode.Mode() {
	case cgroupsmode.Unified:
		cg.v2mount = cgroupRoot
	case cgroupsmode.Hybrid:
		cg.v2mount, cg.hybrid = cgroupRoot+"/unified", true
	default:
		return nil, errors.New("no cgroup v2 hierarchy is mounted (only v1, or none): a command's cgroup needs it for cgroup.kill and to be born inside it")
	}
	// This thread's: it is not locked, so it is in this process's own
	// cgroups, where /proc/self's (the main thread's) may be a command's
	// while a forker is parked on the main thread.
	v1own, v2own, err := cgroupsmode.ParseCgroupFileUnified("/proc/thread-self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("reading this process's cgroups: %w", err)
	}
	inst := fmt.Sprintf("%d-%d", os.Getpid(), instanceSeq.Add(1))
	under := func(own string) string {
		if path.IsAbs(parent) {
			return path.Clean(parent)
		}
		return path.Join("/", own, parent)
	}
	v2parent := under(v2own)
	if err := os.MkdirAll(cg.v2mount+v2parent, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create cgroup %s: %w (rexecd needs root, or a cgroup delegated to its user: Delegate=yes in its systemd unit, with --cgroup-parent inside it)", cg.v2mount+v2parent, err)
	}
	stale := sweep(cg.v2mount + v2parent)
	cg.dir = cg.v2mount + path.Join(v2parent, inst)
	if err := os.Mkdir(cg.dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create cgroup %s: %w", cg.dir, err)
	}
	if _, err := os.Stat(cg.dir + "/cgroup.kill"); err != nil {
		os.Remove(cg.dir)
		return nil, errors.New("cgroup.kill is missing (Linux 5.14 or later has it): rexec cannot end a command's cgroup at once")
	}
	if !cg.hybrid {
		cg.enableControllers(v2own, path.Join(v2parent, inst))
	} else {
		stale = append(stale, cg.setupV1(v1own, under, inst)...)
	}
	cg.removeStale(stale)
	return cg, nil
}

// enableControllers makes memory, pids and cpu available to the cells
// (pure v2): each cgroup from the mount down to the runner's directory
// must list them in cgroup.subtree_control. A cgroup that holds processes
// cannot (the no-internal-process rule): when that is this process's own
// cgroup (a systemd unit's, or a container's), its processes move into a
// leaf beside the commands, "rexecd", as systemd's delegation asks.
func (cg *cgroups) enableControllers(own, dir string) {
	want := []string{"memory", "pids", "cpu"}
	parts := strings.Split(strings.Trim(dir, "/"), "/")
	for i := 0; i <= len(parts); i++ {
		rel := "/" + strings.Join(parts[:i], "/")
		d := cg.v2mount + rel
		avail := strings.Fields(readString(d + "/cgroup.controllers"))
		on := strings.Fields(readString(d + "/cgroup.subtree_control"))
		var keep []string
		for _, c := range want {
			switch {
			case !slices.Contains(avail, c):
				continue
			case slices.Contains(on, c):
			default:
				err := writeString(d+"/cgroup.subtree_control", "+"+c)
				if errors.Is(err, unix.EBUSY) && path.Clean(rel) == path.Clean("/"+own) && moveOwnProcs(d) == nil {
					err = writeString(d+"/cgroup.subtree_control", "+"+c)
				}
				if err != nil {
					cg.missing = append(cg.missing, fmt.Sprintf("%s (cannot enable it in %s: %v)", c, d, err))
					continue
				}
			}
			keep = append(keep, c)
		}
		want = keep
	}
	for _, c := range []string{"memory", "pids", "cpu"} {
		if !slices.Contains(want, c) && !containsPrefix(cg.missing, c+" ") {
			cg.missing = append(cg.missing, c+" (no such controller in this cgroup)")
		}
	}
	cg.memory, cg.pids, cg.cpu = slices.Contains(want, "memory"), slices.Contains(want, "pids"), slices.Contains(want, "cpu")
}

// moveOwnProcs moves every process of cgroup d into its leaf d/rexecd.
func moveOwnProcs(d string) error {
	leaf := d + "/rexecd"
	if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	for _, pid := range strings.Fields(readString(d + "/cgroup.procs")) {
		if err := writeString(leaf+"/cgroup.procs", pid); err != nil && !errors.Is(err, unix.ESRCH) {
			return err
		}
	}
	return nil
}

// setupV1 makes the runner's directory in the v1 memory, pids and cpu
// hierarchies of the hybrid layout, and notes this process's own cgroups
// there, where a forking thread returns.
//
// It returns what an earlier rexecd left there (see sweep).
func (cg *cgroups) setupV1(own map[string]string, under func(string) string, inst string) (stale []string) {
	subs := map[cgroup1.Name]cgroup1.Subsystem{
		cgroup1.Memory: cgroup1.NewMemory(cgroupRoot, cgroup1.OptionalSwap()),
		cgroup1.Pids:   cgroup1.NewPids(cgroupRoot),
		cgroup1.Cpu:    cgroup1.NewCpu(cgroupRoot),
	}
	for _, name := range []cgroup1.Name{cgroup1.Memory, cgroup1.Pids, cgroup1.Cpu} {
		mine, ok := own[string(name)]
		mount := cgroupRoot + "/" + string(name)
		if _, err := os.Stat(mount + "/tasks"); err != nil || !ok {
			cg.missing = append(cg.missing, string(name)+" (no v1 hierarchy for it)")
			continue
		}
		parent := under(mine)
		stale = append(stale, sweep(mount+parent)...)
		dir := path.Join(parent, inst)
		if err := os.MkdirAll(mount+dir, 0o755); err != nil {
			cg.missing = append(cg.missing, fmt.Sprintf("%s (cannot create %s: %v)", name, mount+dir, err))
			continue
		}
		cg.v1subs = append(cg.v1subs, subs[name])
		cg.v1dir[name], cg.v1own[name] = dir, mine
		switch name {
		case cgroup1.Memory:
			cg.memory = true
		case cgroup1.Pids:
			cg.pids = true
		case cgroup1.Cpu:
			cg.cpu = true
		}
	}
	return stale
}

func (cg *cgroups) hierarchy() cgroup1.InitOpts {
	return cgroup1.WithHierarchy(func() ([]cgroup1.Subsystem, error) { return cg.v1subs, nil })
}

// describe is the Isolation the layer gives.
func (cg *cgroups) describe() Isolation {
	iso := Isolation{Cgroups: true, Mode: "cgroup v2", Dir: cg.dir, Missing: strings.Join(cg.missing, "; ")}
	if cg.hybrid {
		names := make([]string, len(cg.v1subs))
		for i, s := range cg.v1subs {
			names[i] = string(s.Name())
		}
		iso.Mode = "cgroup v2 + v1 " + strings.Join(names, ",") + " (hybrid)"
	}
	for _, l := range []struct {
		ok   bool
		name string
	}{{cg.memory, "memory"}, {cg.pids, "pids"}, {cg.cpu, "cpu"}} {
		if l.ok {
			iso.Limits = append(iso.Limits, l.name)
		}
	}
	return iso
}

// refuse says why l cannot be enforced here, or nil.
func (cg *cgroups) refuse(l Limits) error {
	for _, c := range []struct {
		set, ok bool
		field   string
		name    string
	}{{l.Memory != 0, cg.memory, "limits.memory_bytes", "memory"}, {l.Pids != 0, cg.pids, "limits.pids", "pids"}, {l.MilliCPU != 0, cg.cpu, "limits.milli_cpu", "cpu"}} {
		if c.set && !c.ok {
			return &FieldError{Field: c.field, Problem: "the server has no " + c.name + " controller for its commands' cgroups: " + strings.Join(cg.missing, "; "), Precondition: true}
		}
	}
	return nil
}

// cell is one command's cgroup: a v2 cgroup and, on the hybrid layout,
// its v1 cgroups.
type cell struct {
	cg   *cgroups
	name string
	path string // the v2 cgroup, absolute
	fd   int    // an O_PATH descriptor of path, for SysProcAttr.CgroupFD
	v2   *cgroup2.Manager
	// v1dirs are its cgroups in the v1 hierarchies (hybrid), absolute;
	// v1 is loaded from them for limits.
	v1dirs []string
	v1     cgroup1.Cgroup
	// The files a command's end reads, opened as the cell is taken (a
	// pread is one system call where a read of a name is five):
	// cgroup.events, cpu.stat, the memory peak, pids.peak; -1 when none.
	events, cpuStat, memPeak, pidsPeak int

	// jobs reaches the cell's parked forker (hybrid; see park), nil when
	// none is parked; left is closed when its forker has gone back.
	jobs chan forkJob
	left chan struct{}

	limits Limits
	// forkPeak is the v1 pids.peak as the forking thread left (hybrid),
	// which counted the thread too; see v1PeakProcesses.
	forkPeak int64
	oomFile  *os.File      // hybrid with a memory limit: the OOM eventfd
	oom      chan struct{} // closed when the v1 memory cgroup went OOM
}

// take returns a cell with limits l applied, from the pool when it has one.
func (cg *cgroups) take(l Limits) (*cell, error) {
	var c *cell
	select {
	case c = <-cg.pool:
	default:
	}
	cg.refill()
	if c == nil {
		var err error
		if c, err = cg.newCell(); err != nil {
			return nil, err
		}
	}
	if err := c.open(); err != nil {
		c.release()
		return nil, err
	}
	if err := c.apply(l); err != nil {
		c.release()
		return nil, fmt.Errorf("limits of the command's cgroup: %w", err)
	}
	return c, nil
}

// refill fills the pool in the background, when it is half empty and no
// filler runs.
func (cg *cgroups) refill() {
	if cg.closed.Load() || len(cg.pool) > cap(cg.pool)/2 || !cg.filling.CompareAndSwap(false, true) {
		return
	}
	cg.bg.Add(1)
	go func() {
		defer cg.bg.Done()
		defer cg.filling.Store(false)
		for len(cg.pool) < cap(cg.pool) && !cg.closed.Load() {
			c, err := cg.newCell()
			if err != nil {
				return // take makes its own, and says why
			}
			select {
			case cg.pool <- c:
			default:
				c.remove()
				return
			}
		}
	}()
}

// newCell makes a cell's cgroups, with no limits.
func (cg *cgroups) newCell() (*cell, error) {
	name := "c" + strconv.FormatUint(cg.seq.Add(1), 10)
	c := &cell{cg: cg, name: name, path: cg.dir + "/" + name, fd: -1, events: -1, cpuStat: -1, memPeak: -1, pidsPeak: -1}
	if err := os.Mkdir(c.path, 0o755); err != nil {
		return nil, fmt.Errorf("create the command's cgroup: %w", err)
	}
	var err error
	c.v2, err = cgroup2.Load(strings.TrimPrefix(c.path, cg.v2mount), cgroup2.WithMountpoint(cg.v2mount))
	// Plain mkdirs: cgroup1.New stats and creates every path with
	// MkdirAll, and its Delete walks each hierarchy: on the hot path (or
	// beside it, on a busy machine) that is the difference.
	for _, s := range cg.v1subs {
		if err == nil {
			if err = os.Mkdir(c.v1path(s.Name()), 0o755); err == nil {
				c.v1dirs = append(c.v1dirs, c.v1path(s.Name()))
			}
		}
	}
	if err != nil {
		c.remove()
		return nil, fmt.Errorf("create the command's cgroup: %w", err)
	}
	if c.hybrid() {
		// A cell that cannot park parks again at its start, and says why.
		_ = c.park()
	}
	return c, nil
}

// open opens the descriptors a command's cell is used through, as it is
// taken: a pooled cell holds none, so the pool does not change how many
// files rexecd has open.
func (c *cell) open() error {
	fd, err := unix.Open(c.path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the command's cgroup: %w", err)
	}
	c.fd = fd
	open := func(name string) int {
		fd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1
		}
		return fd
	}
	c.events, c.cpuStat = open(c.path+"/cgroup.events"), open(c.path+"/cpu.stat")
	switch {
	case c.hybrid():
		if c.cg.memory {
			c.memPeak = open(c.v1path(cgroup1.Memory) + "/memory.max_usage_in_bytes")
		}
		if c.cg.pids {
			c.pidsPeak = open(c.v1path(cgroup1.Pids) + "/pids.peak")
		}
	default:
		if c.cg.memory {
			c.memPeak = open(c.path + "/memory.peak")
		}
		if c.cg.pids {
			c.pidsPeak = open(c.path + "/pids.peak")
		}
	}
	return nil
}

// pread reads a cgroup file opened with the cell, from its start.
func pread(fd int) string {
	if fd < 0 {
		return ""
	}
	var b [512]byte
	n, err := unix.Pread(fd, b[:], 0)
	if err != nil || n < 0 {
		return ""
	}
	return string(b[:n])
}

func preadInt(fd int) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(pread(fd)), 10, 64)
	return n
}

// apply writes l's cgroup limits to c's controller files, before the
// command starts. No swap is allowed beyond a memory limit, and on v2 an
// OOM kill takes the whole command (memory.oom.group), as Kubernetes does.
func (c *cell) apply(l Limits) error {
	c.limits = l
	if !l.cgroupLimits() {
		return nil
	}
	if c.hybrid() {
		return c.applyV1(l)
	}
	var res cgroup2.Resources
	if l.Memory != 0 {
		group := true
		res.Memory = &cgroup2.Memory{Max: &l.Memory, OOMGroup: &group}
	}
	if l.Pids != 0 {
		res.Pids = &cgroup2.Pids{Max: l.Pids}
	}
	if l.MilliCPU != 0 {
		quota, period := l.MilliCPU*cpuPeriod/1000, uint64(cpuPeriod)
		res.CPU = &cgroup2.CPU{Max: cgroup2.NewCPUMax(&quota, &period)}
	}
	if err := c.v2.Update(&res); err != nil {
		return err
	}
	if l.Memory != 0 {
		// Absent without swap accounting: then there is no swap to limit.
		if err := writeString(c.path+"/memory.swap.max", "0"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

func (c *cell) applyV1(l Limits) error {
	v1, err := cgroup1.Load(func(n cgroup1.Name) (string, error) { return c.cg.v1dir[n] + "/" + c.name, nil }, c.cg.hierarchy())
	if err != nil {
		return err
	}
	c.v1 = v1
	var res specs.LinuxResources
	if l.Memory != 0 {
		// memsw (memory and swap) equal to the limit: no swap beyond it.
		// The kernel's OOM killer is off in the cell: a forker thread of
		// this process may be in it, and the killer would pick this whole
		// process (the larger one) as its victim. rexec ends the command
		// itself on the OOM notification (watchOOM): all of it, as v2's
		// memory.oom.group does, never rexecd.
		noKiller := true
		res.Memory = &specs.LinuxMemory{Limit: &l.Memory, Swap: &l.Memory, DisableOOMKiller: &noKiller}
		if _, err := os.Stat(cgroupRoot + "/memory" + c.cg.v1dir[cgroup1.Memory] + "/" + c.name + "/memory.memsw.limit_in_bytes"); err != nil {
			res.Memory.Swap = nil
		}
	}
	if l.Pids != 0 {
		// One more while the forking thread is in it too: start lowers it
		// to the limit before the thread leaves.
		limit := l.Pids + 1
		res.Pids = &specs.LinuxPids{Limit: &limit}
	}
	if l.MilliCPU != 0 {
		quota, period := l.MilliCPU*cpuPeriod/1000, uint64(cpuPeriod)
		res.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	}
	if err := c.v1.Update(&res); err != nil {
		return err
	}
	if l.Memory != 0 {
		return c.watchOOM()
	}
	return nil
}

// watchOOM registers for the v1 memory cgroup's OOM notification: with
// the kernel's OOM killer off in the cell, the command's processes wait at
// the limit until the lifetime loop, told here, kills them all.
func (c *cell) watchOOM() error {
	fd, err := c.v1.OOMEventFD()
	if err != nil {
		return fmt.Errorf("OOM notification: %w", err)
	}
	if err := unix.SetNonblock(int(fd), true); err != nil {
		unix.Close(int(fd))
		return err
	}
	c.oomFile = os.NewFile(fd, "oom-eventfd") // on the poller: Close ends a pending Read
	c.oom = make(chan struct{})
	go func() {
		var b [8]byte
		// The kernel also signals it when the cgroup is removed, after
		// release, when nobody waits for it any more.
		if _, err := c.oomFile.Read(b[:]); err == nil {
			close(c.oom)
		}
	}()
	return nil
}

// oomEvents is closed when the command's v1 memory cgroup had an OOM kill;
// nil (never ready) without such a watch.
func (c *cell) oomEvents() <-chan struct{} {
	if c == nil {
		return nil
	}
	return c.oom
}

// start runs fork (which starts the command and returns its pid) so that
// the command is born in the cell: attr gets the v2 cgroup's descriptor,
// and on the hybrid layout the fork runs on the cell's forker, a thread
// that is in the cell's v1 cgroups (see park). When a step after the fork
// fails, the command is killed.
func (c *cell) start(attr *syscall.SysProcAttr, fork func() (int, error)) error {
	if c == nil {
		_, err := fork()
		return err
	}
	attr.UseCgroupFD, attr.CgroupFD = true, c.fd
	if !c.hybrid() {
		_, err := fork()
		return err
	}
	if c.jobs == nil {
		if err := c.park(); err != nil {
			return err
		}
	}
	j := forkJob{fork: fork, done: make(chan error, 1)}
	c.jobs <- j
	c.jobs = nil
	return <-j.done
}

// forkJob is what a cell's forker does, once: fork, or (fork nil) leave.
type forkJob struct {
	fork func() (int, error)
	done chan error
}

// park starts the cell's forker: a goroutine locked to its OS thread,
// which moves itself into the cell's v1 memory and pids cgroups and waits
// there for its one job. A v1 child starts in its forking thread's
// cgroups, so the command is in its v1 cgroups from its first instruction;
// and since the pool parks its cells ahead, and the thread goes back after
// it has answered, the moves are not on a command's way. If the thread
// cannot go back, it is not unlocked: its goroutine ends, and Go ends the
// thread with it, so nothing else of this process ever runs (or forks) in
// the command's cgroups.
//
// The thread moves itself, writing "0" to a tasks file: for any other id
// the kernel takes a system-wide lock (cgroup_threadgroup_rwsem, an RCU
// grace period that also holds up every fork on the host), which is why
// cgroup1's AddTask, which writes the id, is not used here. The cpu
// hierarchy is entered only for a cpu limit, at the fork: a move between
// cpu cgroups requeues the thread, and CPU time is counted by the v2
// cgroup anyway.
func (c *cell) park() error {
	jobs, ready, left := make(chan forkJob), make(chan error, 1), make(chan struct{})
	go func() {
		defer close(left)
		runtime.LockOSThread()
		var entered []cgroup1.Name
		enter := func(n cgroup1.Name) error {
			if err := writeString(c.v1path(n)+"/tasks", "0"); err != nil {
				return fmt.Errorf("enter the command's v1 %s cgroup: %w", n, err)
			}
			entered = append(entered, n)
			return nil
		}
		back := func() error {
			for _, n := range entered {
				if err := writeString(cgroupRoot+"/"+string(n)+c.cg.v1own[n]+"/tasks", "0"); err != nil {
					c.cg.log.Error("a thread that starts commands could not leave a command's v1 cgroup; the thread ends", "err", err)
					return fmt.Errorf("leave the command's v1 cgroups: %w", err)
				}
			}
			runtime.UnlockOSThread()
			return nil
		}
		var err error
		for _, s := range c.cg.v1subs {
			if s.Name() != cgroup1.Cpu && err == nil {
				err = enter(s.Name())
			}
		}
		if err != nil {
			_ = back()
			ready <- err
			return
		}
		ready <- nil
		j := <-jobs
		if j.fork == nil {
			j.done <- back()
			return
		}
		if c.limits.MilliCPU != 0 && c.cg.cpu {
			err = enter(cgroup1.Cpu)
		}
		if err == nil {
			_, err = j.fork()
		}
		if c.cg.pids && err == nil {
			pids := c.v1path(cgroup1.Pids)
			if c.limits.Pids != 0 {
				if werr := writeString(pids+"/pids.max", strconv.FormatInt(c.limits.Pids, 10)); werr != nil {
					c.kill()
					err = fmt.Errorf("pids limit: %w", werr)
				}
			}
			c.forkPeak = preadInt(c.pidsPeak)
		}
		j.done <- err
		_ = back()
	}()
	if err := <-ready; err != nil {
		<-left
		return err
	}
	c.jobs, c.left = jobs, left
	return nil
}

// unpark sends a parked forker that had no command back to this process's
// cgroups, and waits until any forker of the cell has gone back.
func (c *cell) unpark() {
	if c.jobs != nil {
		j := forkJob{done: make(chan error, 1)}
		c.jobs <- j
		c.jobs = nil
		<-j.done
	}
	if c.left != nil {
		<-c.left
	}
}

// hybrid reports whether c has v1 cgroups (the hybrid layout).
func (c *cell) hybrid() bool { return len(c.cg.v1subs) > 0 }

func (c *cell) v1path(n cgroup1.Name) string {
	return cgroupRoot + "/" + string(n) + c.cg.v1dir[n] + "/" + c.name
}

// kill sends SIGKILL to every process in the cell (cgroup.kill), those
// that left the command's process group included.
func (c *cell) kill() {
	if c != nil && c.populated() {
		_ = writeString(c.path+"/cgroup.kill", "1")
	}
}

// populated reports whether any process of the command is alive (a
// zombie is not): the kernel's cgroup.events.
func (c *cell) populated() bool {
	if c.events < 0 {
		return true // cannot tell: as if
	}
	return strings.Contains(pread(c.events), "populated 1")
}

// waitEmpty waits until no process is left in the cell, at most d, and
// reports whether none is.
func (c *cell) waitEmpty(d time.Duration) bool {
	if c == nil {
		return true
	}
	deadline := time.Now().Add(d)
	for pause := 50 * time.Microsecond; c.populated(); pause = min(2*pause, 10*time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause)
	}
	return true
}

// usage reads what the command consumed from the cell's controllers, into
// u; it returns the number of OOM kills in the cell.
func (c *cell) usage(u *Usage) (oomKills uint64) {
	// The few files that say it, read directly from descriptors opened
	// with the cell: cgroup2's Stat reads the pressure files too and the
	// whole memory.stat, cgroup1's some twenty files a command, and neither
	// reads pids.peak; each read of a name costs tens of microseconds at a
	// command's end on a busy machine.
	cpu := kv(pread(c.cpuStat))
	u.Cgroup = true
	u.UserCPU = time.Duration(cpu["user_usec"]) * time.Microsecond
	u.SystemCPU = time.Duration(cpu["system_usec"]) * time.Microsecond
	u.PeakMemory = preadInt(c.memPeak)
	if c.limits.Memory != 0 { // an OOM kill needs a limit
		if c.hybrid() {
			oomKills = c.v1OOMKills()
		} else {
			oomKills = uint64(kv(readString(c.path + "/memory.events"))["oom_kill"])
		}
	}
	if c.pidsPeak >= 0 {
		u.PeakProcesses = preadInt(c.pidsPeak)
		if c.hybrid() {
			u.PeakProcesses = c.v1PeakProcesses(u.PeakProcesses)
		}
	}
	return oomKills
}

// kv parses a cgroup file of "key value" lines (cpu.stat, memory.events).
func kv(text string) map[string]int64 {
	m := map[string]int64{}
	for line := range strings.Lines(text) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			m[k] = n
		}
	}
	return m
}

// v1PeakProcesses is the command's peak process count on the hybrid
// layout, from the kernel's peak of its v1 pids cgroup, which counted the
// forking thread too for the moment of the fork (and cannot be reset, and
// moving the command elsewhere takes the system-wide lock start avoids). A
// peak above the count as the thread left is the command's own; one no
// higher was that moment's, thread included: then the command had one
// fewer. (A command that, later, has exactly as many processes as then,
// thread included, is reported one short: a shell that runs one child at
// a time peaks at 2 and is reported 1.) The kernel also raises the peak
// for a fork its limit refuses: no more ran at once than the limit.
func (c *cell) v1PeakProcesses(peak int64) int64 {
	if peak <= c.forkPeak {
		peak = c.forkPeak - 1
	}
	if l := c.limits.Pids; l > 0 {
		peak = min(peak, l)
	}
	return max(peak, 1)
}

// v1OOMKills is the oom_kill count of the cell's v1 memory cgroup.
func (c *cell) v1OOMKills() uint64 {
	for line := range strings.Lines(readString(c.v1path(cgroup1.Memory) + "/memory.oom_control")) {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// release gives the cell up once its command has ended: its descriptors
// are closed at once, its cgroups removed in the background (the kernel
// refuses while a process is still dying in it; memory cgroups take a
// while to go).
func (c *cell) release() {
	if c == nil {
		return
	}
	if c.oomFile != nil {
		c.oomFile.Close()
	}
	c.cg.bg.Add(1)
	go func() {
		defer c.cg.bg.Done()
		c.remove()
	}()
}

// remove closes the cell's descriptor and removes its cgroups.
func (c *cell) remove() {
	c.unpark()
	for _, fd := range []*int{&c.fd, &c.events, &c.cpuStat, &c.memPeak, &c.pidsPeak} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
	for _, d := range c.v1dirs {
		if err := rmdirRetry(d); err != nil {
			c.cg.log.Warn("cannot remove a command's cgroup", "err", err)
		}
	}
	for pause := time.Millisecond; ; pause *= 2 {
		err := os.Remove(c.path)
		if err == nil || errors.Is(err, fs.ErrNotExist) || pause > time.Second {
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				c.cg.log.Warn("cannot remove a command's cgroup", "path", c.path, "err", err)
			}
			return
		}
		c.kill()
		time.Sleep(pause)
	}
}

// close kills what is left in the runner's cgroups and removes them.
func (cg *cgroups) close() error {
	if !cg.closed.CompareAndSwap(false, true) {
		return nil
	}
	cg.bg.Wait() // the filler, and the removal of ended commands' cells
	for {
		select {
		case c := <-cg.pool:
			c.remove()
			continue
		default:
		}
		break
	}
	return removeTree(cg.dir, cg.v1dirs())
}

// v1dirs are the runner's directories in the v1 hierarchies, absolute.
func (cg *cgroups) v1dirs() []string {
	var dirs []string
	for _, s := range cg.v1subs {
		dirs = append(dirs, cgroupRoot+"/"+string(s.Name())+cg.v1dir[s.Name()])
	}
	return dirs
}

// removeTree kills every process in the v2 cgroup dir and below, and
// removes it and every cgroup under it, and the v1 directories v1 (and
// theirs).
func removeTree(dir string, v1 []string) error {
	_ = writeString(dir+"/cgroup.kill", "1")
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if b, err := os.ReadFile(dir + "/cgroup.events"); err != nil || !bytes.Contains(b, []byte("populated 1")) {
			break
		}
	}
	var errs []error
	for _, d := range append([]string{dir}, v1...) {
		errs = append(errs, rmdirAll(d))
	}
	return errors.Join(errs...)
}

// rmdirAll removes the cgroup d and every cgroup under it, deepest first
// (a cgroup's files are the kernel's: only its directories are removed).
func rmdirAll(d string) error {
	ents, err := os.ReadDir(d)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var errs []error
	for _, e := range ents {
		if e.IsDir() {
			errs = append(errs, rmdirAll(filepath.Join(d, e.Name())))
		}
	}
	return errors.Join(append(errs, rmdirRetry(d))...)
}

// rmdirRetry removes the empty cgroup d, giving the kernel a moment for
// processes that are still dying in it.
func rmdirRetry(d string) error {
	var err error
	for pause := time.Millisecond; pause < 300*time.Millisecond; pause *= 2 {
		if err = os.Remove(d); err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		time.Sleep(pause)
	}
	return fmt.Errorf("remove cgroup %s: %w", d, err)
}

// sweep finds the directories that runners of processes which no longer
// exist left in parent (a rexecd killed by SIGKILL whose guard was killed
// too, or that died before its guard could act): it kills what still runs
// in them at once, and returns them for removal.
func sweep(parent string) []string {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return nil
	}
	var stale []string
	for _, e := range ents {
		pidStr, _, ok := strings.Cut(e.Name(), "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || !e.IsDir() || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if alive(pid) {
			continue
		}
		d := filepath.Join(parent, e.Name())
		_ = writeString(d+"/cgroup.kill", "1") // v2; v1 has none, and its processes are v2's
		stale = append(stale, d)
	}
	return stale
}

// alive reports whether process pid runs: it exists (or is not ours to
// ask about) and is not a zombie that its parent has yet to reap.
func alive(pid int) bool {
	if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist)
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || len(b) < i+3 || b[i+2] != 'Z'
}

// removeStale removes what sweep found, in the background.
func (cg *cgroups) removeStale(dirs []string) {
	if len(dirs) == 0 {
		return
	}
	cg.bg.Add(1)
	go func() {
		defer cg.bg.Done()
		for _, d := range dirs {
			if err := removeTree(d, nil); err != nil {
				cg.log.Warn("cannot remove a cgroup that an earlier rexecd left", "err", err)
			}
		}
	}()
}

func readString(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func readInt(p string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(readString(p)), 10, 64)
	return n
}

// writeString writes s to a cgroup file in one write(2), as the kernel
// wants it.
func writeString(p, s string) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func containsPrefix(list []string, p string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.HasPrefix(x, p) })
}

// limitsMemory reports whether the cells have a memory controller (and so
// a peak memory figure of their own).
func (cg *cgroups) limitsMemory() bool { return cg.memory }
