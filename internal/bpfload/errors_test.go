package bpfload

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/netmeter/netmeter/internal/testnet"
)

func fakeState(memlockFinite bool, caps ...Capability) state {
	return state{
		effective: func(c Capability) bool {
			for _, have := range caps {
				if c == have {
					return true
				}
			}
			return false
		},
		memlockFinite: memlockFinite,
	}
}

func TestClassify(t *testing.T) {
	need := []Capability{CapBPF, CapNetAdmin}
	memlockEPERM := fmt.Errorf("map create: %w (MEMLOCK may be too low, consider rlimit.RemoveMemlock)", unix.EPERM)
	featErr := fmt.Errorf("detect support for CGroupSKB: %w", fmt.Errorf("CGroupSKB not supported (requires >= v4.10): %w", ebpf.ErrNotSupported))

	tests := []struct {
		name       string
		err        error
		st         state
		wantType   string // %T of the result
		wantIs     []error
		wantIsNot  []error
		wantSubstr []string
	}{
		{
			name:       "non-root map create EPERM names both capabilities and setcap",
			err:        memlockEPERM,
			st:         fakeState(true),
			wantType:   "*bpfload.CapabilityError",
			wantIs:     []error{unix.EPERM, fs.ErrPermission},
			wantIsNot:  []error{ebpf.ErrNotSupported},
			wantSubstr: []string{"load x: operation not permitted: missing CAP_BPF, CAP_NET_ADMIN", "run as root or grant CAP_BPF,CAP_NET_ADMIN", "setcap cap_bpf,cap_net_admin+ep "},
		},
		{
			name:       "only CAP_NET_ADMIN missing",
			err:        fmt.Errorf("load program: %w", unix.EPERM),
			st:         fakeState(false, CapBPF),
			wantType:   "*bpfload.CapabilityError",
			wantSubstr: []string{"missing CAP_NET_ADMIN:", "setcap cap_net_admin+ep"},
		},
		{
			name:     "CAP_SYS_ADMIN satisfies every capability",
			err:      fmt.Errorf("load program: %w", unix.EPERM),
			st:       fakeState(false, CapSysAdmin),
			wantType: "*bpfload.CapabilityError",
			wantSubstr: []string{"although the required capabilities are effective",
				"user namespace"},
		},
		{
			name:       "EACCES without verifier log is a permission problem",
			err:        fmt.Errorf("attach: %w", unix.EACCES),
			st:         fakeState(false),
			wantType:   "*bpfload.CapabilityError",
			wantSubstr: []string{"permission denied: missing CAP_BPF"},
		},
		{
			name:       "memlock EPERM with capabilities and a finite limit",
			err:        memlockEPERM,
			st:         fakeState(true, CapBPF, CapNetAdmin),
			wantType:   "*bpfload.MemlockError",
			wantIs:     []error{unix.EPERM},
			wantSubstr: []string{"load x: map create", "ulimit -l unlimited", "LimitMEMLOCK=infinity"},
		},
		{
			name:     "memlock hint is ignored when the limit is infinite",
			err:      memlockEPERM,
			st:       fakeState(false, CapBPF, CapNetAdmin),
			wantType: "*bpfload.CapabilityError",
		},
		{
			name:       "BTF file missing",
			err:        &os.PathError{Op: "open", Path: BTFPath, Err: unix.ENOENT},
			st:         fakeState(false, CapSysAdmin),
			wantType:   "*bpfload.BTFError",
			wantIs:     []error{ebpf.ErrNotSupported, os.ErrNotExist},
			wantSubstr: []string{"kernel BTF not found at /sys/kernel/btf/vmlinux", "CONFIG_DEBUG_INFO_BTF=y"},
		},
		{
			name:       "cilium/ebpf found no BTF anywhere",
			err:        fmt.Errorf("load kernel spec: no BTF found for kernel version 5.4.0: %w", ebpf.ErrNotSupported),
			st:         fakeState(false, CapSysAdmin),
			wantType:   "*bpfload.BTFError",
			wantIs:     []error{ebpf.ErrNotSupported},
			wantSubstr: []string{"CONFIG_DEBUG_INFO_BTF"},
		},
		{
			name:       "other ENOENT is not about BTF",
			err:        &os.PathError{Op: "open", Path: "/sys/fs/bpf/x", Err: unix.ENOENT},
			st:         fakeState(false, CapSysAdmin),
			wantType:   "*fmt.wrapError",
			wantIs:     []error{os.ErrNotExist},
			wantIsNot:  []error{ebpf.ErrNotSupported},
			wantSubstr: []string{"load x: open /sys/fs/bpf/x"},
		},
		{
			name:       "missing program type is ErrNotSupported and named",
			err:        featErr,
			st:         fakeState(false, CapSysAdmin),
			wantType:   "*bpfload.FeatureError",
			wantIs:     []error{ebpf.ErrNotSupported},
			wantSubstr: []string{"does not support CGroupSKB", "requires >= v4.10", "upgrade the kernel"},
		},
		{
			name:      "plain error gets context",
			err:       errors.New("boom"),
			st:        fakeState(false),
			wantType:  "*fmt.wrapError",
			wantIsNot: []error{ebpf.ErrNotSupported, unix.EPERM},
		},
		{
			name:     "already classified passes through",
			err:      &FeatureError{Op: "probe", Feature: "map type RingBuf", Err: ebpf.ErrNotSupported},
			st:       fakeState(false),
			wantType: "*bpfload.FeatureError",
			wantIs:   []error{ebpf.ErrNotSupported},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classify("load x", tt.err, need, tt.st)
			if got == nil {
				t.Fatal("nil error")
			}
			if typ := fmt.Sprintf("%T", got); typ != tt.wantType {
				t.Errorf("type %s, want %s (%v)", typ, tt.wantType, got)
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("result does not wrap the original error: %v", got)
			}
			for _, target := range tt.wantIs {
				if !errors.Is(got, target) {
					t.Errorf("errors.Is(%v, %v) = false", got, target)
				}
			}
			for _, target := range tt.wantIsNot {
				if errors.Is(got, target) {
					t.Errorf("errors.Is(%v, %v) = true", got, target)
				}
			}
			msg := got.Error()
			for _, s := range tt.wantSubstr {
				if !strings.Contains(msg, s) {
					t.Errorf("message lacks %q:\n%s", s, msg)
				}
			}
			if msg != "" && msg[0] >= 'A' && msg[0] <= 'Z' {
				t.Errorf("message starts upper case: %s", msg)
			}
		})
	}
	if classify("x", nil, need, fakeState(false)) != nil {
		t.Error("classify(nil) != nil")
	}
}

func TestPrepare(t *testing.T) {
	ok := func() error { return nil }
	okProg := func(ebpf.ProgramType) error { return nil }
	okMap := func(ebpf.MapType) error { return nil }
	good := probes{btfPath: "/", memlock: ok, programType: okProg, mapType: okMap}
	req := Requirements{
		Name:         "src",
		Capabilities: []Capability{CapBPF, CapNetAdmin},
		BTF:          true,
		ProgramTypes: []ebpf.ProgramType{ebpf.CGroupSKB},
		MapTypes:     []ebpf.MapType{ebpf.PerCPUArray},
	}
	root := fakeState(true, CapSysAdmin)

	tests := []struct {
		name     string
		st       state
		p        func(probes) probes
		wantType string
		wantIs   error
		want     string
	}{
		{name: "all good", st: root},
		{name: "bpf and net_admin without sys_admin", st: fakeState(true, CapBPF, CapNetAdmin)},
		{
			name: "capabilities first, even if memlock would fail", st: fakeState(true),
			p:        func(p probes) probes { p.memlock = func() error { return unix.EPERM }; return p },
			wantType: "*bpfload.CapabilityError", wantIs: unix.EPERM,
			want: "prepare src: operation not permitted: missing CAP_BPF, CAP_NET_ADMIN",
		},
		{
			name: "memlock", st: root,
			p: func(p probes) probes {
				p.memlock = func() error { return fmt.Errorf("failed to set memlock rlimit: %w", unix.EPERM) }
				return p
			},
			wantType: "*bpfload.MemlockError", wantIs: unix.EPERM, want: "ulimit -l",
		},
		{
			name: "no BTF", st: root,
			p:        func(p probes) probes { p.btfPath = "/nonexistent/btf/vmlinux"; return p },
			wantType: "*bpfload.BTFError", wantIs: ebpf.ErrNotSupported, want: "CONFIG_DEBUG_INFO_BTF",
		},
		{
			name: "program type missing", st: root,
			p: func(p probes) probes {
				p.programType = func(ebpf.ProgramType) error { return fmt.Errorf("CGroupSKB: %w", ebpf.ErrNotSupported) }
				return p
			},
			wantType: "*bpfload.FeatureError", wantIs: ebpf.ErrNotSupported, want: "does not support program type CGroupSKB",
		},
		{
			name: "map type missing", st: root,
			p: func(p probes) probes {
				p.mapType = func(ebpf.MapType) error { return ebpf.ErrNotSupported }
				return p
			},
			wantType: "*bpfload.FeatureError", wantIs: ebpf.ErrNotSupported, want: "does not support map type PerCPUArray",
		},
		{
			name: "probe refused despite capabilities", st: fakeState(true, CapBPF, CapNetAdmin),
			p: func(p probes) probes {
				p.programType = func(ebpf.ProgramType) error { return fmt.Errorf("load program: %w", unix.EPERM) }
				return p
			},
			wantType: "*bpfload.CapabilityError", wantIs: unix.EPERM, want: "probe program type CGroupSKB",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := good
			if tt.p != nil {
				p = tt.p(p)
			}
			err := prepare(req, tt.st, p)
			if tt.wantType == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if typ := fmt.Sprintf("%T", err); typ != tt.wantType {
				t.Errorf("type %s, want %s (%v)", typ, tt.wantType, err)
			}
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("message lacks %q:\n%v", tt.want, err)
			}
		})
	}
}

func TestCapabilityString(t *testing.T) {
	for c, want := range map[Capability]string{
		CapBPF: "CAP_BPF", CapNetAdmin: "CAP_NET_ADMIN", CapPerfmon: "CAP_PERFMON", CapSysAdmin: "CAP_SYS_ADMIN", 1: "CAP_1",
	} {
		if got := c.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", uint8(c), got, want)
		}
	}
}

// On the real process: Prepare with nothing required succeeds, and as root
// so does Prepare for a cgroup_skb source (the probes run on this kernel).
func TestPrepareReal(t *testing.T) {
	if err := Prepare(Requirements{Name: "empty"}); err != nil {
		t.Fatal(err)
	}
	testnet.RequirePrivileged(t) // probing program types needs root
	err := Prepare(Requirements{
		Name:         "real",
		Capabilities: []Capability{CapBPF, CapNetAdmin},
		BTF:          true,
		ProgramTypes: []ebpf.ProgramType{ebpf.CGroupSKB},
		MapTypes:     []ebpf.MapType{ebpf.PerCPUArray},
	})
	if err != nil {
		t.Fatal(err)
	}
}
