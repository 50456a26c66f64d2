package bpf

import (
	"testing"

	"github.com/cilium/ebpf/btf"
)

func TestSameProto(t *testing.T) {
	long := &btf.Int{Name: "long", Size: 8, Encoding: btf.Signed}
	ulong := &btf.Int{Name: "unsigned long", Size: 8}
	regs := &btf.Pointer{Target: &btf.Struct{Name: "pt_regs"}}
	fn := func(ret btf.Type, params ...btf.Type) *btf.Func {
		p := &btf.FuncProto{Return: ret}
		for _, t := range params {
			p.Params = append(p.Params, btf.FuncParam{Type: t})
		}
		return &btf.Func{Name: "__x64_sys_mlock2", Type: p}
	}
	for _, tc := range []struct {
		name string
		a, b *btf.Func
		want bool
	}{
		{"the same types", fn(long, regs), fn(long, regs), true},
		{"another return type", fn(long, regs), fn(ulong, regs), false},
		{"another parameter type", fn(long, regs), fn(long, ulong), false},
		{"more parameters", fn(long, regs), fn(long, regs, regs), false},
		{"no parameters", fn(long), fn(long), true},
		{"not a prototype", fn(long, regs), &btf.Func{Name: "x", Type: long}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sameProto(tc.a, tc.b); got != tc.want {
				t.Errorf("sameProto = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestUniqueKernelFuncKeepsUniqueNames: on a kernel whose BTF names each
// syscall function once (this host), making targets unique changes nothing
// and the function is still found by its name.
func TestUniqueKernelFuncKeepsUniqueNames(t *testing.T) {
	cache := btf.NewCache()
	spec, err := cache.Kernel()
	if err != nil {
		t.Skipf("no kernel BTF: %v", err) // every kernel we support as root has it; CI checks it elsewhere
	}
	for _, name := range []string{"__x64_sys_mlock2", "no_such_function_here"} {
		before, _ := spec.AnyTypesByName(name)
		if err := UniqueKernelFunc(cache, name); err != nil {
			t.Fatalf("UniqueKernelFunc(%s): %v", name, err)
		}
		after, _ := spec.AnyTypesByName(name)
		if len(before) != len(after) {
			t.Errorf("%s: %d types before, %d after", name, len(before), len(after))
		}
		for _, typ := range after {
			if typ.TypeName() != name {
				t.Errorf("%s renamed to %s", name, typ.TypeName())
			}
		}
	}
}
