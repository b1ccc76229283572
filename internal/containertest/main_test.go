package containertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/netmeter/netmeter/internal/testnet"
	"github.com/vishvananda/netlink"
)

// TestMain is Main plus a check, after the shared daemons have stopped, that
// the host is as it was: no new links, netns, cgroups, iptables chains or
// processes.
func TestMain(m *testing.M) {
	if os.Getenv(testnet.EnvRole) != "" {
		testnet.Main(m)
	}
	keepMu.Lock()
	keepDaemons = true
	keepMu.Unlock()
	var before hostState
	root := os.Geteuid() == 0
	if root {
		before = snapshotHost()
	}
	code := m.Run()
	shutdownAll()
	if root {
		if diff := snapshotHost().diff(before); diff != "" {
			fmt.Fprintf(os.Stderr, "containertest: the tests left things behind:\n%s", diff)
			if code == 0 {
				code = 1
			}
		} else if testing.Verbose() {
			fmt.Fprintln(os.Stderr, "containertest: host state after the tests matches the state before them")
		}
	}
	os.Exit(code)
}

type hostState struct {
	links, netns, cgroups, chains, procs []string
}

func snapshotHost() hostState {
	var s hostState
	links, _ := netlink.LinkList()
	for _, l := range links {
		s.links = append(s.links, l.Attrs().Name)
	}
	ents, _ := os.ReadDir(testnet.NetnsDir)
	for _, e := range ents {
		s.netns = append(s.netns, e.Name())
	}
	if mnt, err := testnet.Cgroup2Mount(); err == nil {
		for _, parent := range []string{"docker", "libpod_parent", "machine.slice", testnet.CgroupParent} {
			_ = filepath.WalkDir(filepath.Join(mnt, parent), func(p string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					s.cgroups = append(s.cgroups, p)
				}
				return nil
			})
		}
	}
	for _, bin := range []string{"iptables-save", "ip6tables-save"} {
		out, _ := exec.Command(bin).Output()
		for line := range strings.SplitSeq(string(out), "\n") {
			if strings.HasPrefix(line, "*") || strings.HasPrefix(line, ":") || strings.HasPrefix(line, "-A") {
				s.chains = append(s.chains, bin+" "+line)
			}
		}
	}
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, "nmt-docker-") || strings.Contains(cmd, "nmt-podman-") || strings.Contains(cmd, "nmt-hm-") {
			s.procs = append(s.procs, e.Name()+": "+cmd)
		}
	}
	return s
}

// diff lists what is in s but not in before. When other test processes use
// this package at the same time (go test ./... runs packages in parallel),
// only what this process made (see track) counts: their containers, links
// and chains are theirs.
func (s hostState) diff(before hostState) string {
	mine := tracked()
	concurrent := otherLiveOwners("nmt-docker-*", "") || otherLiveOwners("nmt-podman-*", "")
	ours := func(x string) bool {
		for _, m := range mine {
			if strings.Contains(x, m) {
				return true
			}
		}
		return false
	}
	// Namespaces and cgroups under netmeter-test are also made by
	// internal/testnet in other packages' tests: only ours count.
	testnetOwned := func(x string) bool {
		return strings.HasPrefix(x, testnet.NetnsPrefix) || strings.Contains(x, "/"+testnet.CgroupParent+"/")
	}
	var b strings.Builder
	add := func(what string, now, was []string) {
		for _, x := range now {
			if slices.Contains(was, x) {
				continue
			}
			if (concurrent || testnetOwned(x)) && !ours(x) {
				continue
			}
			fmt.Fprintf(&b, "  new %s: %s\n", what, x)
		}
	}
	add("link", s.links, before.links)
	add("netns", s.netns, before.netns)
	add("cgroup", s.cgroups, before.cgroups)
	if !concurrent {
		add("iptables line", s.chains, before.chains)
	}
	add("process", s.procs, before.procs)
	if concurrent && testing.Verbose() {
		fmt.Fprintln(os.Stderr, "containertest: other test processes use containers now; checking only what this one made")
	}
	return b.String()
}
