package containertest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/netmeter/netmeter/internal/testnet"
	"github.com/vishvananda/netlink"
)

// A daemon directory whose owner died (a panicked test binary) is removed,
// with its bridge, by the next run.
func TestReapStale(t *testing.T) {
	testnet.RequirePrivileged(t)
	dir, err := os.MkdirTemp("", "nmt-docker-")
	if err != nil {
		t.Fatal(err)
	}
	bridge := "nmtd-" + randHex(4)
	t.Cleanup(func() { _ = delHostLink(bridge); _ = os.RemoveAll(dir) })
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridge}}); err != nil {
		t.Fatal(err)
	}
	// pid_max is at most 4194304: this owner cannot be alive.
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte("999999999 "+bridge+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reapStale("nmt-docker-*", t.Logf)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists (%v)", dir, err)
	}
	if _, err := netlink.LinkByName(bridge); err == nil {
		t.Errorf("bridge %s still exists", bridge)
	}
}
