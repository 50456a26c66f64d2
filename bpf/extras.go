package bpf

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// doMlock is the kernel function that locks the pages for mlock and mlock2.
const doMlock = "do_mlock"

// hookDoMlock attaches the kernel-function view: fentry/fexit on do_mlock,
// else kprobe/kretprobe. do_mlock is static, so a kernel may have inlined
// it away; then the status says so and tracing carries on without it.
func (t *Tracer) hookDoMlock() HookStatus {
	status := HookStatus{Syscall: SyscallUnknown, Target: doMlock}
	var skipped []string
	for _, kind := range []Probe{ProbeFentry, ProbeKprobe} {
		status.Probe = kind
		err := t.attachDoMlock(kind)
		if err == nil {
			status.Skipped = skipped
			return status
		}
		skipped = append(skipped, fmt.Sprintf("%s: %s", kind, shortError(err)))
		status.Err = err
	}
	status.Err = fmt.Errorf("%s cannot be hooked on this kernel (%s); events carry no kernel time", doMlock, strings.Join(skipped, "; "))
	return status
}

func (t *Tracer) attachDoMlock(kind Probe) error {
	var enterName, exitName string
	var attach func(enter, exit *ebpf.Program) (link.Link, link.Link, error)
	switch kind {
	case ProbeFentry:
		enterName, exitName = "fe_enter_do_mlock", "fe_exit_do_mlock"
		attach = func(enter, exit *ebpf.Program) (link.Link, link.Link, error) {
			x, err := link.AttachTracing(link.TracingOptions{Program: exit})
			if err != nil {
				return nil, nil, fmt.Errorf("attach fexit %s: %w", doMlock, err)
			}
			e, err := link.AttachTracing(link.TracingOptions{Program: enter})
			if err != nil {
				x.Close()
				return nil, nil, fmt.Errorf("attach fentry %s: %w", doMlock, err)
			}
			return e, x, nil
		}
	case ProbeKprobe:
		enterName, exitName = "kp_enter_do_mlock", "kp_exit_do_mlock"
		attach = func(enter, exit *ebpf.Program) (link.Link, link.Link, error) {
			x, err := link.Kretprobe(doMlock, exit, nil)
			if err != nil {
				return nil, nil, fmt.Errorf("attach kretprobe %s: %w", doMlock, err)
			}
			e, err := link.Kprobe(doMlock, enter, nil)
			if err != nil {
				x.Close()
				return nil, nil, fmt.Errorf("attach kprobe %s: %w", doMlock, err)
			}
			return e, x, nil
		}
	}
	coll, err := t.loadPrograms(nil, enterName, exitName)
	if err != nil {
		return fmt.Errorf("load %s programs for %s: %w", kind, doMlock, err)
	}
	enter, exit, err := attach(coll.Programs[enterName], coll.Programs[exitName])
	if err != nil {
		coll.Close()
		return err
	}
	t.keep(coll, []link.Link{enter, exit})
	return nil
}

// libcFuncs are the C library functions the uprobes watch. musl has no
// mlock2 before 1.2.x; a missing symbol is skipped, not an error.
var libcFuncs = []string{"mlock", "mlock2", "mlockall"}

// libcSearch lists where C libraries live on the distributions we know:
// glibc's libc.so.6 and musl's ld-musl-*.so.1, in /lib, /lib64, /usr/lib
// and their multiarch subdirectories. Symlinked duplicates (merged /usr)
// are dropped by FindLibcs.
var libcSearch = []string{
	"/lib/libc.so.6", "/lib64/libc.so.6", "/usr/lib/libc.so.6", "/usr/lib64/libc.so.6",
	"/lib/*/libc.so.6", "/usr/lib/*/libc.so.6",
	"/lib/ld-musl-*.so.1", "/usr/lib/ld-musl-*.so.1", "/lib/libc.musl-*.so.1",
}

// FindLibcs returns the host's C libraries (and extra, which may name
// others, e.g. a container's), one path per file however many links lead
// to it, in a stable order.
func FindLibcs(extra []string) []string {
	var out []string
	seen := map[[2]uint64]bool{}
	add := func(path string) {
		real, err := filepath.EvalSymlinks(path)
		if err != nil {
			return
		}
		var st syscall.Stat_t
		if err := syscall.Stat(real, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
			return
		}
		key := [2]uint64{st.Dev, st.Ino}
		if seen[key] {
			return
		}
		seen[key] = true
		out = append(out, real)
	}
	for _, pattern := range libcSearch {
		matches, _ := filepath.Glob(pattern)
		slices.Sort(matches)
		for _, m := range matches {
			add(m)
		}
	}
	for _, p := range extra {
		add(p)
	}
	return out
}

// hookLibc attaches uprobes and uretprobes on each libc function in each
// library found; one status per library.
func (t *Tracer) hookLibc(extra []string) []HookStatus {
	libs := FindLibcs(extra)
	if len(libs) == 0 {
		return []HookStatus{{Probe: ProbeUprobe, Target: "libc", Err: errors.New("no C library found (searched " + strings.Join(libcSearch, ", ") + "); name one with MEMLOCK_EXPORTER_LIBC_PATHS")}}
	}
	var out []HookStatus
	for _, lib := range libs {
		out = append(out, t.attachLibc(lib))
	}
	return out
}

func (t *Tracer) attachLibc(lib string) HookStatus {
	status := HookStatus{Probe: ProbeUprobe, Target: lib}
	exe, err := link.OpenExecutable(lib)
	if err != nil {
		status.Err = fmt.Errorf("open %s: %w", lib, err)
		return status
	}
	var attached, missing []string
	for _, fn := range libcFuncs {
		enterName, exitName := "up_enter_"+fn, "up_exit_"+fn
		coll, err := t.loadPrograms(nil, enterName, exitName)
		if err != nil {
			status.Err = fmt.Errorf("load uprobe programs: %w", err)
			return status
		}
		// Exit first, as for the syscall hooks.
		x, err := exe.Uretprobe(fn, coll.Programs[exitName], nil)
		if err != nil {
			coll.Close()
			if errors.Is(err, link.ErrNoSymbol) {
				missing = append(missing, fn)
				continue
			}
			status.Err = fmt.Errorf("attach uretprobe %s:%s: %w", lib, fn, err)
			return status
		}
		e, err := exe.Uprobe(fn, coll.Programs[enterName], nil)
		if err != nil {
			x.Close()
			coll.Close()
			status.Err = fmt.Errorf("attach uprobe %s:%s: %w", lib, fn, err)
			return status
		}
		t.keep(coll, []link.Link{e, x})
		attached = append(attached, fn)
	}
	status.Target = lib + ":" + strings.Join(attached, ",")
	if len(missing) > 0 {
		status.Skipped = []string{"not in this library: " + strings.Join(missing, ", ")}
	}
	if len(attached) == 0 {
		status.Err = fmt.Errorf("%s has none of %s", lib, strings.Join(libcFuncs, ", "))
	}
	return status
}
