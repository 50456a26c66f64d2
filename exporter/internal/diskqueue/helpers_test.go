package diskqueue

import (
	"strconv"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// withNoFreelistSync and withFreelistType are bbolt settings the
// benchmarks compare with the defaults.
func withNoFreelistSync() Option { return func(o *options) { o.noFreelistSync = true } }

func withFreelistType(t bolt.FreelistType) Option {
	return func(o *options) { o.freelistType = t }
}

func itoa(i int) string { return strconv.Itoa(i) }

func withChunkSize(n int) Option { return func(o *options) { o.chunkSize = n } }

// cpuTime is the CPU time the process has spent, in user and system mode.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func withPageSize(n int) Option { return func(o *options) { o.pageSize = n } }
