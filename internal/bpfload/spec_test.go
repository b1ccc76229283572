package bpfload

import (
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

func testSpec() *ebpf.CollectionSpec {
	return &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{
			"flows":   {Name: "flows", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1024},
			"events":  {Name: "events", Type: ebpf.RingBuf, MaxEntries: 1 << 16},
			"owners":  {Name: "owners", Type: ebpf.SkStorage, KeySize: 4, ValueSize: 8},
			".rodata": {Name: ".rodata", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1},
		},
		Programs: map[string]*ebpf.ProgramSpec{
			"count": {Name: "count", Type: ebpf.CGroupSKB, Instructions: asm.Instructions{asm.Return()}},
		},
	}
}

func TestSetMaxEntries(t *testing.T) {
	spec := testSpec()
	if err := SetMaxEntries(spec, map[string]uint32{"flows": 65536, "events": 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if got := spec.Maps["flows"].MaxEntries; got != 65536 {
		t.Errorf("flows max_entries = %d", got)
	}
	if got := spec.Maps["events"].MaxEntries; got != 1<<20 {
		t.Errorf("events max_entries = %d", got)
	}
	for _, tt := range []struct {
		entries map[string]uint32
		want    string
	}{
		{map[string]uint32{"nope": 1}, `map "nope": no such map (have .rodata, events, flows, owners)`},
		{map[string]uint32{"flows": 0}, "at least 1"},
		{map[string]uint32{"events": 3000}, "power of two multiple of the page size"},
		{map[string]uint32{"owners": 10}, "take no size"},
	} {
		err := SetMaxEntries(testSpec(), tt.entries)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("SetMaxEntries(%v) = %v, want error containing %q", tt.entries, err, tt.want)
		}
	}
}

func TestCheckNames(t *testing.T) {
	type maps struct {
		Flows  *ebpf.MapSpec `ebpf:"flows"`
		Events *ebpf.MapSpec `ebpf:"events"`
		Owners *ebpf.MapSpec `ebpf:"owners"`
	}
	type progs struct {
		Count *ebpf.ProgramSpec `ebpf:"count"`
	}
	type all struct {
		progs
		maps
	}
	if err := CheckNames(testSpec(), &all{}); err != nil {
		t.Errorf("matching names: %v", err)
	}

	type partial struct{ progs }
	err := CheckNames(testSpec(), &partial{})
	if err == nil || !strings.Contains(err.Error(), "no Go field for map events, map flows, map owners") {
		t.Errorf("Go side missing maps: %v", err)
	}

	type extra struct {
		all
		Gone *ebpf.MapSpec `ebpf:"gone"`
	}
	err = CheckNames(testSpec(), &extra{})
	if err == nil || !strings.Contains(err.Error(), "gone") {
		t.Errorf("C side missing map: %v", err)
	}
}
