package bpf

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// Some kernels' BTF lists a function more than once: Debian's 6.1 has two
// identical entries for each __x64_sys_mlock* (the real function and,
// apparently, its weak stub from kernel/sys_ni.c). cilium/ebpf refuses such
// an ambiguous fentry/fexit target (btf.ErrMultipleMatches) and offers no
// way to pass a BTF type ID. When all the entries have the same prototype
// the choice does not matter to the kernel, which attaches by the name's
// address; so in the tracer's private copy of the kernel's BTF (its
// btf.Cache) the duplicates are renamed and the first entry, the one
// libbpf would pick, is left to be found. Programs of different prototypes
// are left ambiguous: then the fentry load fails as before and the planner
// falls back to kprobes.

// duplicateSuffix marks a renamed duplicate in the cache's copy of the BTF.
const duplicateSuffix = ".memlock-duplicate"

// uniqueTracingTargets makes the kernel function each fentry/fexit program
// of progs attaches to unambiguous in cache. A function that cannot be made
// unambiguous is left alone: the load reports why.
func uniqueTracingTargets(cache *btf.Cache, progs map[string]*ebpf.ProgramSpec) error {
	for _, p := range progs {
		if p.Type != ebpf.Tracing || p.AttachTo == "" || p.AttachTarget != nil {
			continue
		}
		if err := UniqueKernelFunc(cache, p.AttachTo); err != nil {
			return err
		}
	}
	return nil
}

// UniqueKernelFunc renames all but the lowest-numbered of name's BTF
// functions in cache when they share one prototype. It is a no-op when
// there is one entry, or none (the load then says it is missing). The
// tracer does it for its own fentry/fexit targets; other loaders of
// tracing programs that share the cache (memlock-bench's counter) call it.
func UniqueKernelFunc(cache *btf.Cache, name string) error {
	spec, err := cache.Kernel()
	if err != nil {
		return fmt.Errorf("read kernel BTF: %w", err)
	}
	types, err := spec.AnyTypesByName(name)
	if errors.Is(err, btf.ErrNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("look up %s in kernel BTF: %w", name, err)
	}
	var funcs []*btf.Func
	for _, t := range types {
		if f, ok := t.(*btf.Func); ok {
			funcs = append(funcs, f)
		}
	}
	if len(funcs) < 2 {
		return nil
	}
	id := func(f *btf.Func) btf.TypeID { i, _ := spec.TypeID(f); return i }
	slices.SortFunc(funcs, func(a, b *btf.Func) int { return int(id(a)) - int(id(b)) })
	for _, f := range funcs[1:] {
		if !sameProto(funcs[0], f) {
			return nil
		}
	}
	for _, f := range funcs[1:] {
		f.Name += duplicateSuffix
	}
	return nil
}

// sameProto reports whether two BTF functions have the same prototype:
// the same return and parameter types (types are compared by identity,
// which the kernel's deduplicated BTF makes meaningful).
func sameProto(a, b *btf.Func) bool {
	pa, okA := a.Type.(*btf.FuncProto)
	pb, okB := b.Type.(*btf.FuncProto)
	if !okA || !okB || pa.Return != pb.Return || len(pa.Params) != len(pb.Params) {
		return false
	}
	for i := range pa.Params {
		if pa.Params[i].Type != pb.Params[i].Type {
			return false
		}
	}
	return true
}
