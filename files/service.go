package files

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
)

// Config configures a Service. Zero fields take the defaults below.
type Config struct {
	// StateDir holds the partial uploads of keys without a root (in
	// StateDir/partial). By default $XDG_STATE_HOME/rexec, else
	// ~/.local/state/rexec. A key with a root keeps its partial uploads
	// inside the root, in .rexec-partial/.
	StateDir string
	// Home is where relative paths of keys without a root start. By default
	// the home directory of the user rexecd runs as ($HOME), else "/".
	Home string
	// PartialTTL is how long a partial upload is kept after its last byte
	// arrived. By default 24h.
	PartialTTL time.Duration
	// Checkpoint is how often a running upload saves its state (an fsync of
	// its bytes and of its state file), so that a server killed mid-upload
	// loses at most this much of it. Every upload stream also saves its
	// state when it ends. By default 5s.
	Checkpoint time.Duration
	// ChunkSize is the size of a download's chunks. By default
	// DefaultChunkSize; at most MaxChunk.
	ChunkSize int
	// QuotaRescan is how long a walk of a root's tree counts for its quota
	// before the next upload walks it again (uploads and removals through
	// rexec update the count in between). By default 10s.
	QuotaRescan time.Duration
	// Keys lists the server's keys, for the periodic sweep of expired
	// partial uploads: their roots, and the state directory. By default
	// a directory is swept only when a call starts or lists uploads in it.
	Keys func() []*interceptors.Key
	// Audit gets one line per call that changes files. By default none.
	Audit *slog.Logger
	// Logger gets what goes wrong that no call reports. By default
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock. By default time.Now.
	Now func() time.Time
}

// MaxChunk is the largest chunk a download sends and an upload should
// send: far from gRPC's 4 MiB message limit.
const MaxChunk = 2 << 20

// DefaultChunkSize is 256 KiB less 64 bytes: with its framing a chunk
// message fits the server's 256 KiB message buffers exactly (server's
// bufferPool), and a GiB is 4097 messages, whose per-message costs do not
// show beside hashing and copying the bytes (measured: the same CPU per GiB
// as 1 MiB chunks).
const DefaultChunkSize = 256<<10 - 64

// Service is the FileService. It is safe for concurrent use.
type Service struct {
	rexecv1.UnimplementedFileServiceServer
	cfg Config
	// base is the server's: when it is cancelled (the shutdown grace has
	// passed), running uploads save their state and end with Unavailable.
	base context.Context

	mu      sync.Mutex
	uploads map[string]*upload // by id, while some call holds them
	stores  map[string]*store  // by callFS.store

	calls     sync.WaitGroup // upload streams and the sweeper
	startOnce sync.Once
}

// store is the server's bookkeeping for one directory of partial uploads
// (one root, or the state directory).
type store struct {
	// mu serializes what must see every partial upload of the directory at
	// once: starting one (the quota's reservation), cancelling and expiring
	// them. Lock it before an upload's.
	mu sync.Mutex
	// sweptAt is when expired partial uploads were last removed; under mu.
	sweptAt time.Time

	// lmu guards the quota's count of the root's tree from the last walk,
	// which the uploads and removals rexec makes keep up to date until the
	// next walk. It may be taken under an upload's lock.
	lmu         sync.Mutex
	used, files int64
	walked      time.Time
}

// New returns the service. base is cancelled when the server's shutdown
// grace has passed: uploads then save their state and end.
func New(cfg Config, base context.Context) *Service {
	if cfg.StateDir == "" {
		cfg.StateDir = DefaultStateDir()
	}
	if cfg.Home == "" {
		if h, err := os.UserHomeDir(); err == nil {
			cfg.Home = h
		} else {
			cfg.Home = "/"
		}
	}
	cfg.Home = filepath.Clean(cfg.Home)
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.PartialTTL, 24*time.Hour)
	def(&cfg.Checkpoint, 5*time.Second)
	def(&cfg.QuotaRescan, 10*time.Second)
	if cfg.ChunkSize <= 0 || cfg.ChunkSize > MaxChunk {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, base: base, uploads: map[string]*upload{}, stores: map[string]*store{}}
}

// Start starts the periodic sweep of expired partial uploads (once; more
// calls do nothing), until base is cancelled. The server calls it when it
// begins to serve, so that a server built and never served leaves nothing
// running.
func (s *Service) Start() {
	s.startOnce.Do(func() {
		s.calls.Add(1)
		go s.sweeper()
	})
}

// DefaultStateDir is $XDG_STATE_HOME/rexec, else ~/.local/state/rexec.
func DefaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "rexec")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "rexec")
	}
	return filepath.Join(os.TempDir(), "rexec-state")
}

// Wait waits, at most timeout, for the upload streams to save their state
// and end, and for the sweeper to stop; call it after base is cancelled and
// the gRPC server has stopped. It reports whether all of them ended.
func (s *Service) Wait(timeout time.Duration) bool {
	done := make(chan struct{})
	go func() { s.calls.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// begin returns what the call of ctx reaches: its key's filesystem.
func (s *Service) begin(ctx context.Context) (*callFS, error) {
	return s.open(interceptors.KeyFromContext(ctx))
}

// storeOf returns the bookkeeping of c's partial directory.
func (s *Service) storeOf(c *callFS) *store {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stores[c.store]
	if st == nil {
		st = &store{}
		s.stores[c.store] = st
	}
	return st
}

// sweeper removes expired partial uploads every PartialTTL/8 (between 1s
// and 10min), from the roots of the server's keys and the state directory,
// until base is cancelled.
func (s *Service) sweeper() {
	defer s.calls.Done()
	every := min(max(s.cfg.PartialTTL/8, time.Second), 10*time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.base.Done():
			return
		case <-t.C:
			s.sweepAll()
		}
	}
}

// sweepAll sweeps every directory of partial uploads it knows of.
func (s *Service) sweepAll() {
	seen := map[string]bool{}
	var keys []*interceptors.Key
	if s.cfg.Keys != nil {
		keys = s.cfg.Keys()
	}
	for _, k := range keys {
		if seen[k.Root] {
			continue
		}
		seen[k.Root] = true
		c, err := s.open(k)
		if err != nil {
			continue // its calls say why
		}
		s.sweep(c, s.storeOf(c), true)
		c.Close()
	}
}
