package bpfload

import (
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const hybridMountinfo = `22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 22 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:39 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
`

func TestParseCgroup2Mount(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        error
	}{
		{name: "hybrid host", in: hybridMountinfo, want: "/sys/fs/cgroup/unified"},
		{name: "unified host", in: "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n", want: "/sys/fs/cgroup"},
		{name: "optional fields", in: "30 23 0:26 / /cg rw shared:4 master:1 propagate_from:2 - cgroup2 none rw\n", want: "/cg"},
		{name: "escaped space", in: `30 23 0:26 / /mnt/my\040cgroup rw - cgroup2 cgroup2 rw` + "\n", want: "/mnt/my cgroup"},
		{
			name: "prefers the hierarchy root over a bind of a subtree",
			in:   "1 0 0:26 /sub /bound rw - cgroup2 cgroup2 rw\n2 0 0:26 / /root rw - cgroup2 cgroup2 rw\n",
			want: "/root",
		},
		{name: "only a subtree", in: "1 0 0:26 /sub /bound rw - cgroup2 cgroup2 rw\n", want: "/bound"},
		{name: "v1 only", in: "42 31 0:39 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n", wantErr: ErrNoCgroup2},
		{name: "empty", in: "", wantErr: ErrNoCgroup2},
		{name: "short and junk lines", in: "- cgroup2\n1 2 - cgroup2\nx\n\n", wantErr: ErrNoCgroup2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCgroup2Mount(strings.NewReader(tt.in))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzParseCgroup2Mount(f *testing.F) {
	f.Add(hybridMountinfo)
	f.Add(`1 0 0:1 / /a\040b\ - cgroup2 x y` + "\n")
	f.Add("1 0 0:1 / /x\\ - cgroup2\n")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := parseCgroup2Mount(strings.NewReader(in))
		if err == nil && got == "" {
			t.Error("no error and no mount")
		}
	})
}

func TestCgroup2MountHere(t *testing.T) {
	m, err := Cgroup2Mount()
	if errors.Is(err, ErrNoCgroup2) {
		t.Skip("no cgroup2 mounted on this machine")
	}
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(m, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		t.Errorf("%s has magic %#x, not cgroup2", m, st.Type)
	}
	if got, err := ResolveCgroup(""); err != nil || got != m {
		t.Errorf(`ResolveCgroup("") = %q, %v; want %q`, got, err, m)
	}
	if got, err := ResolveCgroup(m); err != nil || got != m {
		t.Errorf("ResolveCgroup(%q) = %q, %v", m, got, err)
	}
	// A path that is not cgroup2 (on a hybrid host /sys/fs/cgroup is a tmpfs,
	// where attaching fails with EBADF) is refused with the mount to use.
	dir := t.TempDir()
	_, err = ResolveCgroup(dir)
	if err == nil || !strings.Contains(err.Error(), "is not on cgroup2") || !strings.Contains(err.Error(), m) {
		t.Errorf("ResolveCgroup(%s) = %v, want an error naming %s", dir, err, m)
	}
	if _, err := ResolveCgroup("/nonexistent-cgroup"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ResolveCgroup(missing) = %v, want ErrNotExist", err)
	}
}
