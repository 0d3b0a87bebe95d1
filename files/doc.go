// Package files is rexec's FileService: stat, list, download, a resumable
// upload checked end to end with SHA-256, mkdir, remove, rename, symlinks,
// usage and quotas, for keys whose `root=` confines them to one directory
// or, without one, for the filesystem as rexecd's user sees it.
//
// The server registers it beside ExecService, on the same port and
// interceptors (auth, scopes):
//
//	svc := files.New(files.Config{StateDir: dir, Audit: audit}, base)
//	rexecv1.RegisterFileServiceServer(grpcServer, svc)
//	svc.Start() // the sweep of expired partial uploads
//	...
//	svc.Wait(5 * time.Second) // after the gRPC server stopped: uploads checkpoint
//
// Every filesystem operation of a call goes through one value, the FS that
// Service.open returns for the call's key (confine.go): an *os.Root for a
// key with a root, the host filesystem otherwise. That is where paths are
// confined, and where running a call with another user's rights belongs.
//
// An upload lands in a partial file inside the destination's root (in
// .rexec-partial/ for a key with a root, in the state directory otherwise),
// is hashed as its bytes land, and is renamed into place only when its
// size and SHA-256 match, after an fsync. Its state (committed size, the
// SHA-256 state, the source's identity) is saved beside it at checkpoints
// and whenever a stream ends, so that an upload resumes after the client
// or the server restarts without re-reading what the server has.
package files
