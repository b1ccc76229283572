package selflimit

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func readFixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseMountinfo(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []mount
	}{
		{"mountinfo-hybrid", []mount{
			{Root: "/", Point: "/sys/fs/cgroup/cpu", Options: []string{"rw", "relatime"}, FSType: "cgroup", Super: []string{"rw", "cpu"}},
			{Root: "/", Point: "/sys/fs/cgroup/cpuacct", Options: []string{"rw", "relatime"}, FSType: "cgroup", Super: []string{"rw", "cpuacct"}},
			{Root: "/", Point: "/sys/fs/cgroup/cpuset", Options: []string{"rw", "relatime"}, FSType: "cgroup", Super: []string{"rw", "cpuset"}},
			{Root: "/", Point: "/sys/fs/cgroup/memory", Options: []string{"rw", "relatime"}, FSType: "cgroup", Super: []string{"rw", "memory"}},
			{Root: "/", Point: "/sys/fs/cgroup/devices", Options: []string{"rw", "relatime"}, FSType: "cgroup", Super: []string{"rw", "devices"}},
			{Root: "/", Point: "/sys/fs/cgroup/freezer", Options: []string{"rw", "relatime"}, FSType: "cgroup", Super: []string{"rw", "freezer"}},
			{Root: "/", Point: "/sys/fs/cgroup/blkio", Options: []string{"rw", "relatime"}, FSType: "cgroup", Super: []string{"rw", "blkio"}},
			{Root: "/", Point: "/sys/fs/cgroup/pids", Options: []string{"rw", "relatime"}, FSType: "cgroup", Super: []string{"rw", "pids"}},
			{Root: "/", Point: "/sys/fs/cgroup/systemd", Options: []string{"rw", "relatime"}, FSType: "cgroup", Super: []string{"rw", "name=systemd"}},
			{Root: "/", Point: "/sys/fs/cgroup/unified", Options: []string{"rw", "relatime"}, FSType: "cgroup2", Super: []string{"rw"}},
		}},
		{"mountinfo-unified", []mount{
			{Root: "/", Point: "/sys/fs/cgroup", Options: []string{"rw", "nosuid", "nodev", "noexec", "relatime"}, FSType: "cgroup2", Super: []string{"rw", "nsdelegate", "memory_recursiveprot"}},
			{Root: "/", Point: "/mnt/cgroup copy", Options: []string{"rw", "relatime"}, FSType: "cgroup2", Super: []string{"rw"}},
		}},
		{"mountinfo-container", []mount{
			{Root: "/", Point: "/sys/fs/cgroup", Options: []string{"ro", "nosuid", "nodev", "noexec", "relatime"}, FSType: "cgroup2", Super: []string{"rw", "nsdelegate", "memory_recursiveprot"}},
		}},
		{"mountinfo-docker-v1", []mount{
			{Root: "/docker/4f2c0a9b1d", Point: "/sys/fs/cgroup/cpu,cpuacct", Options: []string{"ro", "nosuid", "nodev", "noexec", "relatime"}, FSType: "cgroup", Super: []string{"rw", "cpu", "cpuacct"}},
			{Root: "/docker/4f2c0a9b1d", Point: "/sys/fs/cgroup/memory", Options: []string{"ro", "nosuid", "nodev", "noexec", "relatime"}, FSType: "cgroup", Super: []string{"rw", "memory"}},
			{Root: "/docker/4f2c0a9b1d", Point: "/sys/fs/cgroup/systemd", Options: []string{"ro", "nosuid", "nodev", "noexec", "relatime"}, FSType: "cgroup", Super: []string{"rw", "xattr", "name=systemd"}},
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := parseMountinfo(strings.NewReader(readFixture(t, tc.file)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(mount{})); diff != "" {
				t.Errorf("mounts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseMountinfoErrors(t *testing.T) {
	for _, in := range []string{
		"25 24 0:26 / /sys/fs/cgroup rw cgroup2 cgroup2 rw\n", // no separator
		"25 24 0:26 / - cgroup2 cgroup2 rw\n",                 // too few fields before it
		"25 24 0:26 / /sys/fs/cgroup rw - cgroup2\n",          // too few after it
	} {
		if ms, err := parseMountinfo(strings.NewReader(in)); err == nil {
			t.Errorf("parseMountinfo(%q) = %+v, want an error", in, ms)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []membership
	}{
		{"cgroup-hybrid", []membership{
			{9, []string{"name=systemd"}, "/"},
			{8, []string{"pids"}, "/"},
			{7, []string{"blkio"}, "/"},
			{6, []string{"freezer"}, "/"},
			{5, []string{"devices"}, "/"},
			{4, []string{"memory"}, "/supervisor/job-1"},
			{3, []string{"cpuset"}, "/"},
			{2, []string{"cpuacct"}, "/"},
			{1, []string{"cpu"}, "/"},
			{0, nil, "/"},
		}},
		{"cgroup-unified", []membership{{0, nil, "/system.slice/netmeter.service"}}},
		{"cgroup-docker-v1", []membership{
			{12, []string{"memory"}, "/docker/4f2c0a9b1d"},
			{4, []string{"cpu", "cpuacct"}, "/docker/4f2c0a9b1d"},
			{1, []string{"name=systemd"}, "/docker/4f2c0a9b1d"},
			{0, nil, "/system.slice/containerd.service"},
		}},
		{"cgroup-colon", []membership{{0, nil, "/user.slice/odd:name"}}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := parseProcCgroup(strings.NewReader(readFixture(t, tc.file)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("memberships (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseProcCgroupErrors(t *testing.T) {
	for _, in := range []string{"0:/\n", "x::/\n", "-1::/\n", "0::relative\n"} {
		if ms, err := parseProcCgroup(strings.NewReader(in)); err == nil {
			t.Errorf("parseProcCgroup(%q) = %+v, want an error", in, ms)
		}
	}
}

func TestLocate(t *testing.T) {
	for _, tc := range []struct {
		root, cg, want string
		err            bool
	}{
		{"/", "/", "/", false},
		{"/", "/a/b", "/a/b", false},
		{"/docker/x", "/docker/x", "/", false},
		{"/docker/x", "/docker/x/sub", "/sub", false},
		{"/docker/x", "/docker/xy", "", true},
		{"/docker/x", "/other", "", true},
		{"/", "/../../host", "", true},
		{"/", "/..", "", true},
	} {
		got, err := locate(mount{Root: tc.root, Point: "/sys/fs/cgroup"}, tc.cg)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("locate(root %s, %s) = %q, %v; want %q, error %v", tc.root, tc.cg, got, err, tc.want, tc.err)
		}
	}
}

func FuzzParseMountinfo(f *testing.F) {
	for _, name := range []string{"mountinfo-hybrid", "mountinfo-unified", "mountinfo-container", "mountinfo-docker-v1"} {
		f.Add(readFixture(f, name))
	}
	f.Add("1 2 0:3 / /x rw - cgroup2\n")
	f.Add("1 2 0:3 / /a\\040b rw - cgroup cgroup rw,cpu\n")
	f.Fuzz(func(t *testing.T, in string) {
		ms, err := parseMountinfo(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.FSType != "cgroup" && m.FSType != "cgroup2" {
				t.Fatalf("returned a %q mount", m.FSType)
			}
			if len(m.Options) == 0 {
				t.Fatalf("mount %+v has no options", m)
			}
		}
	})
}

func FuzzParseProcCgroup(f *testing.F) {
	for _, name := range []string{"cgroup-hybrid", "cgroup-unified", "cgroup-docker-v1", "cgroup-colon"} {
		f.Add(readFixture(f, name))
	}
	f.Add("1:cpu,cpuacct:/a:b\n0::/\n")
	f.Fuzz(func(t *testing.T, in string) {
		ms, err := parseProcCgroup(strings.NewReader(in))
		if err != nil {
			return
		}
		// What parses formats back to text that parses to the same.
		var b strings.Builder
		for _, m := range ms {
			if !strings.HasPrefix(m.Path, "/") || m.ID < 0 {
				t.Fatalf("bad membership %+v", m)
			}
			fmt.Fprintf(&b, "%d:%s:%s\n", m.ID, strings.Join(m.Controllers, ","), m.Path)
		}
		again, err := parseProcCgroup(strings.NewReader(b.String()))
		if err != nil {
			t.Fatalf("reparse %q: %v", b.String(), err)
		}
		if diff := cmp.Diff(ms, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
