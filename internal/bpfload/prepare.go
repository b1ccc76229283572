package bpfload

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Requirements describe what a BPF source needs from the kernel and the
// process. The zero value needs nothing.
type Requirements struct {
	// Name identifies the source in errors, e.g. "pktcount".
	Name string
	// Capabilities needed to load and attach (CapSysAdmin satisfies any).
	Capabilities []Capability
	// BTF is set when the objects use CO-RE and need the kernel's BTF.
	BTF bool
	// ProgramTypes and MapTypes are probed with cilium/ebpf's features package.
	ProgramTypes []ebpf.ProgramType
	MapTypes     []ebpf.MapType
}

// Prepare checks req against the running kernel and process, in the order
// a user would fix them: capabilities, memlock rlimit (removed when the
// kernel still charges BPF memory to it), kernel BTF, then program and map
// types. It returns the first problem as a typed error (see package doc).
func Prepare(req Requirements) error {
	return prepare(req, currentState(), probes{
		btfPath:     BTFPath,
		memlock:     rlimit.RemoveMemlock,
		programType: features.HaveProgramType,
		mapType:     features.HaveMapType,
	})
}

// probes are the side effects Prepare performs; tests replace them.
type probes struct {
	btfPath     string
	memlock     func() error
	programType func(ebpf.ProgramType) error
	mapType     func(ebpf.MapType) error
}

func prepare(req Requirements, st state, p probes) error {
	op := "prepare " + req.Name
	var missing []Capability
	for _, c := range req.Capabilities {
		if !st.effective(c) && !st.effective(CapSysAdmin) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return &CapabilityError{Op: op, Missing: missing, Err: unix.EPERM}
	}

	if err := p.memlock(); err != nil {
		return &MemlockError{Err: err}
	}

	if req.BTF {
		if _, err := os.Stat(p.btfPath); err != nil {
			return &BTFError{Path: p.btfPath, Err: err}
		}
	}

	for _, pt := range req.ProgramTypes {
		if err := p.programType(pt); err != nil {
			if errors.Is(err, ebpf.ErrNotSupported) {
				return &FeatureError{Op: op, Feature: "program type " + pt.String(), Err: err}
			}
			return classify(fmt.Sprintf("%s: probe program type %s", op, pt), err, req.Capabilities, st)
		}
	}
	for _, mt := range req.MapTypes {
		if err := p.mapType(mt); err != nil {
			if errors.Is(err, ebpf.ErrNotSupported) {
				return &FeatureError{Op: op, Feature: "map type " + mt.String(), Err: err}
			}
			return classify(fmt.Sprintf("%s: probe map type %s", op, mt), err, req.Capabilities, st)
		}
	}
	return nil
}
