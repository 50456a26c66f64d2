package exporter

import (
	"unsafe"

	"go.opentelemetry.io/otel/attribute"

	"github.com/memlock-exporter/memlock-exporter/procfs"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// Processes looks up what procfs shows of a process: its executable path,
// arguments, cgroup, container and PID namespace. Get reports false when the
// process is gone (it exited before it was looked at); its events then carry
// only what the kernel reported. Get is called once per event, from Handle,
// so it must be cheap when it answers from memory. *procfs.Cache satisfies
// it.
type Processes interface {
	Get(pid uint32) (procfs.Info, bool)
}

// maxProcessMemo bounds each of the memos of per-process attribute values
// (cgroup lines, argument vectors); a full memo is emptied and refilled.
const maxProcessMemo = 1024

// processAttrs builds the attributes that come from procfs, remembering the
// values that would cost an allocation per event to build: the cgroup line
// and the argument vector. Not safe for concurrent use.
type processAttrs struct {
	cgroups map[string]attribute.KeyValue
	// args is keyed by the argument vector's backing array, which the
	// Processes cache shares among the answers for one process; the key
	// keeps that array alive, so an address is never reused while it is
	// in the memo.
	args map[*string]argsAttr
}

type argsAttr struct {
	n  int // the vector's length
	kv attribute.KeyValue
}

// append appends the attributes of info to a.
func (p *processAttrs) append(a []attribute.KeyValue, info *procfs.Info) []attribute.KeyValue {
	if info.ExePath != "" {
		a = append(a, semconv.ProcessExecutablePathKey.String(info.ExePath))
	}
	if len(info.CommandArgs) > 0 {
		a = append(a, p.commandArgs(info.CommandArgs))
	}
	if info.CgroupPath != "" {
		a = append(a, p.cgroup(info.CgroupPath))
	}
	if info.ContainerID != "" {
		a = append(a, semconv.ContainerIDKey.String(info.ContainerID))
	}
	if info.PodUID != "" {
		a = append(a, semconv.K8SPodUIDKey.String(info.PodUID))
	}
	if info.InPIDNamespace {
		a = append(a, semconv.ProcessVpidKey.Int64(int64(info.VPID)))
	}
	return a
}

func (p *processAttrs) commandArgs(args []string) attribute.KeyValue {
	k := unsafe.SliceData(args)
	if m, ok := p.args[k]; ok && m.n == len(args) {
		return m.kv
	}
	kv := semconv.ProcessCommandArgsKey.StringSlice(args)
	if p.args == nil || len(p.args) >= maxProcessMemo {
		p.args = make(map[*string]argsAttr)
	}
	p.args[k] = argsAttr{len(args), kv}
	return kv
}

func (p *processAttrs) cgroup(path string) attribute.KeyValue {
	if kv, ok := p.cgroups[path]; ok {
		return kv
	}
	kv := semconv.ProcessLinuxCgroup(path)
	if p.cgroups == nil || len(p.cgroups) >= maxProcessMemo {
		p.cgroups = make(map[string]attribute.KeyValue)
	}
	p.cgroups[path] = kv
	return kv
}
