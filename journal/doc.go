// Package journal keeps executions: each command's events flow from the
// runner into a journal on disk, and every reader — the stream a client is
// attached to, a resumed stream, `rexec logs` — takes them from there by
// sequence number, the same way for every transport.
//
//	j, err := journal.Open(journal.Options{Dir: dir})
//	x, att, err := j.Start(ctx, r, spec, journal.StartOptions{Owner: keyID, Lifetime: journal.Resumable, Attach: true})
//	for { it, err := att.Next(ctx); ... send it ...; att.Ack(seq) }   // the live stream
//	att.Close(cause)                 // the stream ended: Call cancels, Resumable gets the grace
//	b, err := x.Attach(lastSeq + 1)  // a resumed stream goes on exactly where the client stopped
//
// # The journal on disk
//
// Each execution has a directory named by its id: meta.json (who started
// it, what, when, how it ended; a version a line, appended on each change)
// and its output as segment files of records (seq, stream, offset,
// checksum), as etcd's WAL and systemd's journal keep theirs: append-only,
// read back by sequence, cut at a torn record after a crash. Plain files rather than an
// embedded database such as bbolt: output is written once, in order, and
// read in order; a segment is evicted whole; so a file per segment does the
// whole job with one write per chunk, into the page cache as it comes (a
// killed server loses none), while bbolt would copy every chunk into its
// B+tree pages, commit (and by default fsync) a transaction per batch, and
// never give the freed pages back to the filesystem. An evicted segment's
// file is written over by the next one: rewriting cached pages is a copy,
// where a new file allocates pages and a deleted one frees them. In the
// same way a new execution's directory is a spare one renamed (".spare-…",
// made ahead in the background, or a deleted execution's, emptied): a new
// inode on ext4 cost a short command more than the rest of its journal.
//
// # What is kept, and what holds a command back
//
// The newest output is in memory as well (the live window and one record), so a
// stream that keeps up never reads back from disk: a large chunk stays in
// the runner's own buffer (runner.BufferSink), small ones are copied into
// blocks, and a reader hands a record to its stream without a copy. Bounds, each counted when
// it drops anything: Options.MaxBytes per execution, Options.MaxTotal for
// all (the oldest ended executions go first), Options.Retain for ended
// ones. What may be evicted depends on the lifetime: a Detached command's
// oldest output whenever it is over the bound (it is never blocked by a
// missing reader); a Call command's output once its stream has sent it; a
// Resumable command's once its client has acknowledged it — past MaxBytes
// of unacknowledged output its pipe blocks, which is how the back-pressure
// reaches the command while no client is attached. An attached stream holds
// its command at most a live window ahead of what it has sent, so that a
// slow client slows the command as HTTP/2 flow control did before.
//
// # Restarts
//
// Open reads what a previous server left: ended executions as they were;
// those it left running (it was killed; its guard killed their groups) are
// recorded as ended with reason shutdown.
package journal
