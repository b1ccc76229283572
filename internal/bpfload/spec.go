package bpfload

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
)

// SetMaxEntries sets max_entries of the named maps in spec before it is
// loaded, typically from configuration. Keys are map names as the C source
// spells them (take them from the bpf2go-generated MapSpec's Name or name
// constants, not from string literals). An unknown name, a zero size, or a
// size the map type cannot take is an error naming the map.
func SetMaxEntries(spec *ebpf.CollectionSpec, entries map[string]uint32) error {
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	slices.Sort(names) // deterministic error for the same input
	for _, name := range names {
		n := entries[name]
		ms, ok := spec.Maps[name]
		if !ok {
			return fmt.Errorf("set max_entries of map %q: no such map (have %s)", name, strings.Join(mapNames(spec), ", "))
		}
		if err := checkMaxEntries(ms.Type, n); err != nil {
			return fmt.Errorf("set max_entries of map %q to %d: %w", name, n, err)
		}
		ms.MaxEntries = n
	}
	return nil
}

func checkMaxEntries(t ebpf.MapType, n uint32) error {
	switch t {
	case ebpf.PerfEventArray:
		return errors.New("perf event arrays are sized by the number of CPUs")
	case ebpf.SkStorage, ebpf.InodeStorage, ebpf.TaskStorage, ebpf.CgroupStorage:
		return fmt.Errorf("%s maps live with their owner and take no size", t)
	case ebpf.RingBuf, ebpf.UserRingbuf:
		page := uint32(os.Getpagesize())
		if n == 0 || n%page != 0 || n&(n-1) != 0 {
			return fmt.Errorf("ring buffer size must be a power of two multiple of the page size (%d)", page)
		}
		return nil
	}
	if n == 0 {
		return errors.New("max_entries must be at least 1")
	}
	return nil
}

func mapNames(spec *ebpf.CollectionSpec) []string {
	names := make([]string, 0, len(spec.Maps))
	for name := range spec.Maps {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// CheckNames reports whether the C and Go sides of an object agree: every
// `ebpf:"…"` tag in specs (the bpf2go-generated *<ident>Specs, embedded
// structs included) names a map, program or variable in spec, and every
// program and (non-internal) map in spec is named by a tag. Use it in each
// source's tests so a rename on one side fails the build's tests.
func CheckNames(spec *ebpf.CollectionSpec, specs any) error {
	if err := spec.Assign(specs); err != nil {
		return fmt.Errorf("check names: C objects missing for Go fields: %w", err)
	}
	tags := map[string]bool{}
	collectTags(reflect.TypeOf(specs), tags)

	var missing []string
	for name := range spec.Programs {
		if !tags[name] {
			missing = append(missing, "program "+name)
		}
	}
	for name := range spec.Maps {
		// .rodata, .data, .bss and .kconfig are bound through variables.
		if strings.HasPrefix(name, ".") {
			continue
		}
		if !tags[name] {
			missing = append(missing, "map "+name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("check names: no Go field for %s: regenerate with go generate", strings.Join(missing, ", "))
	}
	return nil
}

func collectTags(t reflect.Type, tags map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if tag := f.Tag.Get("ebpf"); tag != "" {
			tags[tag] = true
			continue
		}
		if f.Anonymous {
			collectTags(f.Type, tags)
		}
	}
}
