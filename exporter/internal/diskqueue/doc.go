// Package diskqueue is the persistent export queue: a FIFO of encoded OTLP
// export requests, each with the number of items (log records or spans)
// it stands for, kept in a bbolt file so that what was waiting for the
// collector survives a restart of the daemon or of the collector. It is
// the store behind MEMLOCK_EXPORTER_QUEUE_DIR, after the OpenTelemetry
// Collector's persistent queue (exporterhelper on the file_storage
// extension, itself bbolt) and Fluent Bit's filesystem buffering.
//
// One Queue is one file, given by its path; each signal has its own (the
// caller names them, e.g. <dir>/logs and <dir>/traces). Open makes the
// directory 0700 and the file 0600, and bbolt locks the file, so one
// process at a time has it open. A producer calls Push; a consumer loops
// on Peek, sends, then Remove, waiting on Ready when the queue is empty.
// Delivery is at least once: a request sent but not yet removed when the
// daemon stops is sent again after the next Open.
//
// # Limits
//
// The queue holds at most Open's maxBytes of request bodies (Bytes). A Push
// that would go over is refused with ErrFull and nothing is written: the
// newest request is dropped, what is queued is kept (drop newest, as the
// exporter's memory queue does, and as the collector's persistent queue
// does when full). The caller counts the items refused.
//
// The file is larger than the bodies: bbolt's pages hold 8 KiB of a
// request each, and pages freed by Remove are reused, not given back.
// Pushed and drained without end, the file stays the size its largest
// backlog needed (TestFileBounded: 4 MiB for a queue of 2 MiB, steady over
// 190 MB of 150 KiB requests). Open compacts a file more than twice the
// size of what it holds plus 16 MiB, so the room a large backlog took is
// given back at the next start (TestCompactOnOpen: 32 MiB to 512 KiB).
//
// # Durability
//
// By default nothing is flushed to the disk (bbolt's NoSync): a Push that
// returned is in the kernel's page cache, which survives a crash or a kill
// of the daemon (TestCrash kills it with SIGKILL) and a restart of the
// collector, the failures this queue is for. A crash of the machine or a
// power loss may lose the last seconds of pushes and removals, or leave
// the file damaged; Open then refuses it (below). Fsync(true) flushes each
// Push and each Remove (fdatasync, twice per commit: the pages, then the
// meta page), which survives those too. The collector's file_storage
// (fsync: false) and Fluent Bit (storage.sync normal) default the same
// way.
//
// Measured here (BenchmarkQueue, 2 vCPUs, an idle machine, the disk
// TMPDIR is on), one request of 512 items of 300 bytes (150 KiB) pushed,
// peeked at and removed:
//
//	default (no fsync)     ~170 µs per request, ~330 ns per item
//	Fsync(true)            ~1.1 ms per request, ~2.2 µs per item
//	                       (one fdatasync of a page alone: ~0.15 ms)
//	16 items (5 KiB):      ~70 µs per request; ~620 µs with Fsync(true)
//
// On a busy machine (load 10 on the 2 CPUs) these were 2 to 5 times as
// much. bbolt's other settings were measured and left at their defaults:
// not syncing the freelist (NoFreelistSync) saved under 10%, the array
// freelist no more than the map one.
//
// # Damage
//
// Open checks the file's pages (bbolt's Tx.Check: it reads every page once,
// ~85 ms for 1,000 requests of 150 KiB) and counts what the file holds
// from each record's header. A file that is not a queue, or is damaged,
// is refused with an error wrapping ErrCorrupt that names it and says to
// remove it. A record whose checksums fail is dropped by Peek and counted
// (Skipped), never returned. Damage found after Open (bbolt panics on a
// bad page) is an ErrCorrupt error from then on, never a crash or a hang.
package diskqueue
