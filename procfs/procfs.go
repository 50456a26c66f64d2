package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// ErrNoProcess reports that the process is not (or no longer) in procfs:
// it exited before it could be read, or the pid was never valid.
var ErrNoProcess = errors.New("process does not exist")

// ErrFieldMissing reports that a procfs file lacks the field asked for, for
// example VmLck in the status file of a kernel thread.
var ErrFieldMissing = errors.New("field missing")

// procPath returns procRoot/<pid>/name.
func procPath(procRoot string, pid uint32, name string) string {
	return filepath.Join(procRoot, strconv.FormatUint(uint64(pid), 10), name)
}

// readProcFile reads procRoot/<pid>/name whole. A pid that is not in procfs
// yields an error wrapping ErrNoProcess; a procRoot that does not exist does not.
func readProcFile(procRoot string, pid uint32, name string) ([]byte, error) {
	path := procPath(procRoot, pid, name)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, processError(procRoot, path, err)
	}
	return data, nil
}

// processError wraps err from reading path, adding ErrNoProcess when err means
// the process is gone (ENOENT, ESRCH) while procRoot itself exists.
func processError(procRoot, path string, err error) error {
	if isGone(err) {
		if _, statErr := os.Stat(procRoot); statErr == nil {
			return fmt.Errorf("read %s: %w", path, ErrNoProcess)
		}
	}
	return fmt.Errorf("read %s: %w", path, err)
}

// isGone reports whether err from a procfs access means the process is gone.
func isGone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// field returns the value of the first "key:" line in data, spaces trimmed.
func field(data []byte, key string) (string, bool) {
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(line) > len(key) && line[len(key)] == ':' && string(line[:len(key)]) == key {
			return string(bytes.TrimSpace(line[len(key)+1:])), true
		}
	}
	return "", false
}
