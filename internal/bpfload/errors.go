package bpfload

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Capability is a Linux capability that loading or attaching BPF may need.
type Capability uint8

// Capabilities that BPF sources ask for. CAP_BPF loads programs and creates
// maps (Linux 5.8+); CAP_NET_ADMIN loads and attaches networking programs
// (cgroup_skb, sockops, tc); CAP_PERFMON loads tracing programs (tp_btf,
// tracepoints). CAP_SYS_ADMIN implies all three.
const (
	CapNetAdmin = Capability(unix.CAP_NET_ADMIN)
	CapSysAdmin = Capability(unix.CAP_SYS_ADMIN)
	CapPerfmon  = Capability(unix.CAP_PERFMON)
	CapBPF      = Capability(unix.CAP_BPF)
)

// String returns the capability's name as capabilities(7) spells it, e.g. CAP_BPF.
func (c Capability) String() string {
	switch c {
	case CapNetAdmin:
		return "CAP_NET_ADMIN"
	case CapSysAdmin:
		return "CAP_SYS_ADMIN"
	case CapPerfmon:
		return "CAP_PERFMON"
	case CapBPF:
		return "CAP_BPF"
	}
	return fmt.Sprintf("CAP_%d", uint8(c))
}

// CapabilityError reports that the kernel refused an operation for lack of
// privileges. Missing lists the required capabilities that are not in the
// process's effective set; it is empty when they all are and the kernel
// refused anyway (user namespace, lockdown, an LSM).
type CapabilityError struct {
	Op      string       // what was attempted, e.g. "load pktcount"
	Missing []Capability // required but not effective
	Err     error        // the underlying error, usually wrapping EPERM
}

func (e *CapabilityError) Error() string {
	if len(e.Missing) == 0 {
		return fmt.Sprintf("%s: %v: the kernel refused although the required capabilities are "+
			"effective (a user namespace, kernel lockdown or an LSM may forbid BPF): run as root in the initial user namespace", e.Op, e.Err)
	}
	names := make([]string, len(e.Missing))
	lower := make([]string, len(e.Missing))
	for i, c := range e.Missing {
		names[i] = c.String()
		lower[i] = strings.ToLower(c.String())
	}
	exe := "/path/to/netmeter"
	if p, err := os.Executable(); err == nil {
		exe = filepath.Clean(p)
	}
	cause := ""
	var errno unix.Errno
	if errors.As(e.Err, &errno) {
		cause = errno.Error() + ": " // the kernel's answer, without misleading hints
	}
	return fmt.Sprintf("%s: %smissing %s: run as root or grant %s: setcap %s+ep %s",
		e.Op, cause, strings.Join(names, ", "), strings.Join(names, ","), strings.Join(lower, ","), exe)
}

func (e *CapabilityError) Unwrap() error { return e.Err }

// BTFPath is where the kernel exposes its own BTF (CONFIG_DEBUG_INFO_BTF).
const BTFPath = "/sys/kernel/btf/vmlinux"

// BTFError reports that the kernel exposes no BTF, which CO-RE programs need.
// It matches ebpf.ErrNotSupported.
type BTFError struct {
	Path string // the BTF file looked for
	Err  error
}

func (e *BTFError) Error() string {
	return fmt.Sprintf("kernel BTF not found at %s: %v: use a kernel built with CONFIG_DEBUG_INFO_BTF=y "+
		"(most distributions since 2020 are)", e.Path, e.Err)
}

func (e *BTFError) Unwrap() error { return e.Err }

// Is reports missing BTF as a missing kernel feature.
func (e *BTFError) Is(target error) bool { return target == ebpf.ErrNotSupported }

// FeatureError reports that the running kernel lacks a BPF feature (a
// program type, map type, attach type or helper). It matches
// ebpf.ErrNotSupported.
type FeatureError struct {
	Op      string // what was attempted
	Feature string // the missing feature, e.g. "program type CGroupSKB"
	Err     error
}

func (e *FeatureError) Error() string {
	return fmt.Sprintf("%s: kernel %s does not support %s: %v: upgrade the kernel "+
		"(netmeter's BPF sources are tested on Linux 6.18)", e.Op, kernelRelease(), e.Feature, e.Err)
}

func (e *FeatureError) Unwrap() error { return e.Err }

// Is reports a missing feature as ebpf.ErrNotSupported even when the
// underlying error is not that sentinel.
func (e *FeatureError) Is(target error) bool { return target == ebpf.ErrNotSupported }

// MemlockError reports that RLIMIT_MEMLOCK is too low for BPF maps and
// programs and could not be raised. Only kernels before 5.11 charge BPF
// memory to RLIMIT_MEMLOCK.
type MemlockError struct {
	Err error
}

func (e *MemlockError) Error() string {
	return fmt.Sprintf("raise memlock rlimit for bpf: %v: run with `ulimit -l unlimited` "+
		"(systemd: LimitMEMLOCK=infinity; docker: --ulimit memlock=-1) or grant CAP_SYS_RESOURCE", e.Err)
}

func (e *MemlockError) Unwrap() error { return e.Err }

// Wrap classifies err, returned while doing op (e.g. "load pktcount",
// "attach cgroup_skb/egress"), that needed the capabilities need. It returns
// nil for a nil err, a [*CapabilityError], [*MemlockError], [*BTFError] or
// [*FeatureError] when err is one of those cases, and otherwise err with op
// as context. Errors that are already classified pass through unchanged.
func Wrap(op string, err error, need ...Capability) error {
	return classify(op, err, need, currentState())
}

// state is what classification needs to know about the process; tests fake it.
type state struct {
	effective     func(Capability) bool // in the effective set
	memlockFinite bool                  // RLIMIT_MEMLOCK is not infinity
}

func classify(op string, err error, need []Capability, st state) error {
	if err == nil {
		return nil
	}
	var (
		capErr  *CapabilityError
		btfErr  *BTFError
		featErr *FeatureError
		memErr  *MemlockError
	)
	if errors.As(err, &capErr) || errors.As(err, &btfErr) || errors.As(err, &featErr) || errors.As(err, &memErr) {
		return err
	}

	switch {
	case errors.Is(err, unix.EPERM) || (errors.Is(err, unix.EACCES) && !isVerifierError(err)):
		var missing []Capability
		for _, c := range need {
			if !st.effective(c) && !st.effective(CapSysAdmin) {
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			return &CapabilityError{Op: op, Missing: missing, Err: err}
		}
		// cilium/ebpf adds this hint to EPERM from map and program
		// creation; it is the cause only while the limit is finite.
		if st.memlockFinite && strings.Contains(err.Error(), "MEMLOCK") {
			return &MemlockError{Err: fmt.Errorf("%s: %w", op, err)}
		}
		return &CapabilityError{Op: op, Err: err}
	case isBTFMissing(err):
		return &BTFError{Path: BTFPath, Err: fmt.Errorf("%s: %w", op, err)}
	case errors.Is(err, ebpf.ErrNotSupported):
		return &FeatureError{Op: op, Feature: featureName(err), Err: err}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// isVerifierError reports whether the verifier rejected a program (EACCES
// with a log): a bug in our C, not a privilege problem.
func isVerifierError(err error) bool {
	var ve *ebpf.VerifierError
	return errors.As(err, &ve)
}

// isBTFMissing recognises the kernel BTF file being absent, whether the
// error comes from opening BTFPath or from cilium/ebpf's search for it.
func isBTFMissing(err error) bool {
	var pe *os.PathError
	if errors.As(err, &pe) && pe.Path == BTFPath && errors.Is(err, os.ErrNotExist) {
		return true
	}
	return errors.Is(err, ebpf.ErrNotSupported) && strings.Contains(err.Error(), "no BTF found")
}

// featureName picks the feature out of cilium/ebpf's "<feature> not
// supported" messages, or describes it generically.
func featureName(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, " not supported"); i > 0 {
		name := msg[:i]
		if j := strings.LastIndex(name, ": "); j >= 0 {
			name = name[j+2:]
		}
		if name != "" {
			return name
		}
	}
	return "a required BPF feature"
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "(unknown release)"
	}
	return unix.ByteSliceToString(u.Release[:])
}
