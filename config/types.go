package config

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/memlock-exporter/memlock-exporter/bpf"
)

// Each type of a Config field parses its variable (UnmarshalText, which
// caarlos0/env calls) and says what it accepts (Allowed), so that the error
// for a bad value and --help cannot disagree. Allowed is phrased to follow
// "must be " and holds no Markdown markup.

// LogLevel is the lowest level of the daemon's own diagnostics.
type LogLevel slog.Level

var logLevels = []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError}

// Level returns the level for log/slog.
func (l LogLevel) Level() slog.Level { return slog.Level(l) }

// String returns the level's name in lower case ("info").
func (l LogLevel) String() string { return strings.ToLower(slog.Level(l).String()) }

// Allowed says what UnmarshalText accepts.
func (LogLevel) Allowed() string {
	names := make([]string, len(logLevels))
	for i, l := range logLevels {
		names[i] = LogLevel(l).String()
	}
	return orList(names) + " (case-insensitive)"
}

// UnmarshalText accepts the four names only: slog's own parser would also
// take "info+2", which no operator means.
func (l *LogLevel) UnmarshalText(text []byte) error {
	for _, lv := range logLevels {
		if strings.EqualFold(string(text), LogLevel(lv).String()) {
			*l = LogLevel(lv)
			return nil
		}
	}
	return fmt.Errorf("unknown log level %q", text)
}

// LogFormat is the format of the daemon's own diagnostics.
type LogFormat uint8

const (
	LogFormatText LogFormat = iota // log/slog's TextHandler
	LogFormatJSON                  // log/slog's JSONHandler
)

var logFormatNames = []string{LogFormatText: "text", LogFormatJSON: "json"}

func (f LogFormat) String() string { return enumString(logFormatNames, f, "LogFormat") }

// Allowed says what UnmarshalText accepts.
func (LogFormat) Allowed() string { return orList(logFormatNames) + " (case-insensitive)" }

func (f *LogFormat) UnmarshalText(text []byte) error { return enumParse(logFormatNames, f, text) }

// Bytes is a byte count, written in bytes or with a binary suffix.
type Bytes int

var byteUnits = []struct {
	suffix string
	mult   int
}{
	{"KiB", 1 << 10},
	{"MiB", 1 << 20},
	{"GiB", 1 << 30},
}

// Allowed says what UnmarshalText accepts.
func (Bytes) Allowed() string {
	return "a byte count (digits, with an optional KiB, MiB or GiB suffix in any case)"
}

// UnmarshalText takes digits only, no sign, space or decimal point, so that
// "4 MiB", "1.5MiB" or "4MB" are errors rather than guesses.
func (b *Bytes) UnmarshalText(text []byte) error {
	s := string(text)
	num, mult := s, 1
	for _, u := range byteUnits {
		if len(s) > len(u.suffix) && strings.EqualFold(s[len(s)-len(u.suffix):], u.suffix) {
			num, mult = s[:len(s)-len(u.suffix)], u.mult
			break
		}
	}
	n, err := strconv.ParseUint(num, 10, 63)
	if err != nil || n > uint64(math.MaxInt/mult) {
		return fmt.Errorf("parse byte count %q", s)
	}
	*b = Bytes(int(n) * mult)
	return nil
}

// String writes b with the largest binary suffix that divides it ("64KiB").
func (b Bytes) String() string {
	n := int(b)
	for i := len(byteUnits) - 1; i >= 0; i-- {
		if u := byteUnits[i]; n != 0 && n%u.mult == 0 {
			return strconv.Itoa(n/u.mult) + u.suffix
		}
	}
	return strconv.Itoa(n)
}

// Syscalls are the calls of the mlock family to trace; bpf.Syscall parses
// each name.
type Syscalls []bpf.Syscall

// Allowed says what the list may hold; Load adds the rule that mlock2
// needs mlock.
func (Syscalls) Allowed() string {
	var names []string
	for s := bpf.SyscallMlock; s.Valid(); s++ {
		names = append(names, s.String())
	}
	last := len(names) - 1
	return "a comma-separated subset of " + strings.Join(names[:last], ", ") + " and " + names[last] + " (case-insensitive)"
}

// KernelHook is the kind of kernel hook to use for the syscalls.
type KernelHook uint8

const (
	HookAuto       KernelHook = iota // the best this kernel offers
	HookFentry                       // fentry/fexit, or fail
	HookKprobe                       // kprobe/kretprobe, or fail
	HookTracepoint                   // syscall tracepoints, or fail
)

var kernelHookNames = []string{HookAuto: "auto", HookFentry: "fentry", HookKprobe: "kprobe", HookTracepoint: "tracepoint"}

func (h KernelHook) String() string { return enumString(kernelHookNames, h, "KernelHook") }

// Allowed says what UnmarshalText accepts.
func (KernelHook) Allowed() string { return orList(kernelHookNames) + " (case-insensitive)" }

func (h *KernelHook) UnmarshalText(text []byte) error { return enumParse(kernelHookNames, h, text) }

// Probes returns the kinds of hook to try, best first, for bpf.Options.Hooks.
func (h KernelHook) Probes() []bpf.Probe {
	switch h {
	case HookFentry:
		return []bpf.Probe{bpf.ProbeFentry}
	case HookKprobe:
		return []bpf.Probe{bpf.ProbeKprobe}
	case HookTracepoint:
		return []bpf.Probe{bpf.ProbeTracepoint}
	}
	return slices.Clone(bpf.HookPreference)
}

// Switch is an on/off setting.
type Switch bool

func (s Switch) String() string {
	if s {
		return "on"
	}
	return "off"
}

// Allowed says what UnmarshalText accepts.
func (Switch) Allowed() string { return "on or off (case-insensitive)" }

func (s *Switch) UnmarshalText(text []byte) error {
	switch {
	case strings.EqualFold(string(text), "on"):
		*s = true
	case strings.EqualFold(string(text), "off"):
		*s = false
	default:
		return fmt.Errorf("parse switch %q", text)
	}
	return nil
}

// LibcPaths are C libraries to probe besides those found on the host.
type LibcPaths []string

// Allowed says what UnmarshalText accepts.
func (LibcPaths) Allowed() string {
	return "absolute paths separated by colons (e.g. /lib/x86_64-linux-gnu/libc.so.6)"
}

// UnmarshalText splits text at colons, as PATH is; an empty entry is an
// error, since PATH's meaning for it (the current directory) makes no sense
// for a daemon.
func (p *LibcPaths) UnmarshalText(text []byte) error {
	paths := strings.Split(string(text), ":")
	for _, path := range paths {
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("not an absolute path: %q", path)
		}
	}
	*p = paths
	return nil
}

// QueueDir is the persistent queue's directory: an absolute path, or empty
// for none.
type QueueDir string

// Allowed says what UnmarshalText accepts.
func (QueueDir) Allowed() string {
	return "an absolute directory path (e.g. /var/lib/memlock-exporter/queue), or empty to queue in memory"
}

// UnmarshalText accepts an absolute path: a daemon's working directory is
// nobody's choice.
func (d *QueueDir) UnmarshalText(text []byte) error {
	if !strings.HasPrefix(string(text), "/") {
		return fmt.Errorf("not an absolute path: %q", text)
	}
	*d = QueueDir(filepath.Clean(string(text)))
	return nil
}

// HealthAddr is where the health endpoint listens: host:port, or empty for
// no endpoint.
type HealthAddr string

// Allowed says what UnmarshalText accepts.
func (HealthAddr) Allowed() string {
	return "host:port with a port number from 1 to 65535 and an empty host for every address (e.g. :8686 or 127.0.0.1:8686), or empty for no health endpoint"
}

// UnmarshalText accepts what net.Listen can bind to a fixed, numeric port:
// a probe needs to know the port, so neither 0 (any free port) nor a
// service name, which would depend on /etc/services in the container. The
// host is left to net.Listen, except blanks, which are always a typo.
func (a *HealthAddr) UnmarshalText(text []byte) error {
	host, port, err := net.SplitHostPort(string(text))
	if err != nil {
		return fmt.Errorf("parse health address %q: %w", text, err)
	}
	if !validPort(port) {
		return fmt.Errorf("parse health address %q: bad port %q", text, port)
	}
	if strings.ContainsFunc(host, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return fmt.Errorf("parse health address %q: blank in host %q", text, host)
	}
	*a = HealthAddr(text)
	return nil
}

// enumString returns names[v], or Type(v) for a value without a name.
func enumString[E ~uint8](names []string, v E, typ string) string {
	if int(v) < len(names) {
		return names[v]
	}
	return typ + "(" + strconv.Itoa(int(v)) + ")"
}

// enumParse sets *v to the value whose name is text, in any case.
func enumParse[E ~uint8](names []string, v *E, text []byte) error {
	for i, name := range names {
		if strings.EqualFold(string(text), name) {
			*v = E(i)
			return nil
		}
	}
	return fmt.Errorf("want %s, not %q", orList(names), text)
}

// orList writes "a", "a or b", "a, b or c".
func orList(items []string) string {
	if len(items) == 1 {
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}
