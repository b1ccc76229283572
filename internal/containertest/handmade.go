package containertest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/testnet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// HandMadeNet is the network of hand-made containers: a bridge inside a
// "host-side" test namespace (never the host's own), with the gateway
// address. Containers on the same HandMadeNet reach each other and the
// host-side namespace; nothing reaches the host.
type HandMadeNet struct {
	// Host is the host-side namespace that holds the bridge. Run host-side
	// servers and clients in it (Host.Do, Host.ListenTCP, Host.Dial,
	// testnet.Command with Host).
	Host *testnet.Netns
	// Bridge is the bridge's name in Host.
	Bridge string
	// Subnet is the network and Gateway the bridge's address.
	Subnet  netip.Prefix
	Gateway netip.Addr

	next byte
}

// NewHandMadeNet creates a host-side namespace with a bridge on a random
// 10.215.X.0/24 (it exists only in test namespaces). Everything goes at t's
// cleanup.
func NewHandMadeNet(t testing.TB) *HandMadeNet {
	t.Helper()
	testnet.RequirePrivileged(t)
	n := &HandMadeNet{Host: testnet.NewNetns(t), Bridge: "nmtbr0", next: 2}
	track(n.Host.Name)
	x, _ := rand.Int(rand.Reader, big.NewInt(254))
	n.Subnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 215, byte(x.Int64() + 1), 0}), 24)
	n.Gateway = n.Subnet.Addr().Next()
	if err := n.Host.AddBridge(n.Bridge); err != nil {
		t.Fatalf("hand-made net: %v", err)
	}
	if err := n.Host.AddAddr(n.Bridge, netip.PrefixFrom(n.Gateway, 24)); err != nil {
		t.Fatalf("hand-made net: %v", err)
	}
	if err := n.Host.SetUp(n.Bridge); err != nil {
		t.Fatalf("hand-made net: %v", err)
	}
	return n
}

// HandMadeOpts describes a hand-made container.
type HandMadeOpts struct {
	// Name is the container's name; empty picks "nmt-hm-<random>".
	Name string
	// Layout shapes the cgroup path like a runtime's: "docker" (the default)
	// gives <cgroup2>/netmeter-test/docker/<id>, "podman"
	// <cgroup2>/netmeter-test/libpod_parent/libpod-<id>.
	Layout string
	// Cmd is the init process, run as /usr/bin/busybox Cmd...; empty runs
	// "sleep 86400".
	Cmd []string
	// Net is the network to join; nil creates one for this container.
	Net *HandMadeNet
}

// HandMade makes a container without a runtime: a cgroup v2 directory with
// a runtime-like path and a 64-hex id, a network namespace whose eth0 is a
// veth to opts.Net's bridge, with an address and a default route via the
// gateway, and an init process (busybox) started inside both. Processes
// from [Container.Exec] and [Container.StartCmd] start in the cgroup
// (CLONE_INTO_CGROUP, before they enter the namespace) and the namespace.
// There are no pid or mount namespaces and no v1 cgroups. Everything is
// removed at t's cleanup.
func HandMade(t testing.TB, opts HandMadeOpts) *Container {
	t.Helper()
	requireTools(t, "hand-made containers", Busybox)
	if opts.Net == nil {
		opts.Net = NewHandMadeNet(t)
	}
	if opts.Name == "" {
		opts.Name = "nmt-hm-" + randHex(3)
	}
	if len(opts.Cmd) == 0 {
		opts.Cmd = []string{"sleep", "86400"}
	}
	c := &Container{Runtime: "handmade", ID: randHex(32), Name: opts.Name, Ports: map[int]int{}, Gateway: opts.Net.Gateway}

	// The network namespace and its link.
	ns := testnet.NewNetns(t)
	c.Netns = ns.Path()
	track(ns.Name)
	track(c.ID)
	hn := opts.Net
	if hn.next == 255 {
		t.Fatalf("hand-made net %s is full", hn.Subnet)
	}
	a4 := hn.Subnet.Addr().As4()
	a4[3] = hn.next
	hn.next++
	c.IP = netip.AddrFrom4(a4)
	peer := "veth" + randHex(3)
	if err := ns.AddVeth(testnet.VethConfig{Name: "eth0", Peer: hn.Host, PeerName: peer}); err != nil {
		t.Fatalf("hand-made %s: %v", c.Name, err)
	}
	steps := []func() error{
		func() error { return hn.Host.SetMaster(peer, hn.Bridge) },
		func() error { return hn.Host.SetUp(peer) },
		func() error { return ns.AddAddr("eth0", netip.PrefixFrom(c.IP, 24)) },
		func() error { return ns.SetUp("eth0") },
		func() error {
			return ns.Netlink().RouteAdd(&netlink.Route{Gw: hn.Gateway.AsSlice(), LinkIndex: mustIndex(ns, "eth0")})
		},
		func() error { return ns.WaitOperUp("eth0", 5*time.Second) },
		func() error { return hn.Host.WaitOperUp(peer, 5*time.Second) },
		func() error { return ns.WaitAddrUsable(c.IP, 5*time.Second) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("hand-made %s: %v", c.Name, err)
		}
	}

	// The cgroup. Registered after the namespace, so it is removed first:
	// its processes die before the namespace goes.
	mnt, err := testnet.Cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	var rel string
	switch opts.Layout {
	case "", "docker":
		rel = "/" + testnet.CgroupParent + "/docker/" + c.ID
	case "podman":
		rel = "/" + testnet.CgroupParent + "/libpod_parent/libpod-" + c.ID
	default:
		t.Fatalf("hand-made layout %q: want docker or podman", opts.Layout)
	}
	dir := filepath.Join(mnt, rel)
	if err := mkdirCgroup(mnt, rel); err != nil {
		t.Fatalf("hand-made %s: %v", c.Name, err)
	}
	c.Cgroup = rel
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("hand-made %s: %v", c.Name, err)
	}
	t.Cleanup(func() {
		unix.Close(fd)
		if err := removeCgroup(mnt, rel); err != nil {
			t.Errorf("hand-made %s: %v", c.Name, err)
		}
	})

	c.command = func(ctx context.Context, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, Busybox, args...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=" + c.Name}
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd, Pdeathsig: syscall.SIGKILL}
		cmd.WaitDelay = 5 * time.Second
		return cmd
	}
	c.start = ns.Start

	// The init process.
	initCmd := c.command(context.Background(), opts.Cmd...)
	if err := c.StartCmd(initCmd); err != nil {
		t.Fatalf("hand-made %s: start init: %v", c.Name, err)
	}
	go func() { _ = initCmd.Wait() }()
	c.PID = initCmd.Process.Pid
	if err := c.readCgroups(); err != nil {
		t.Fatalf("hand-made %s: %v", c.Name, err)
	}
	if c.Cgroup != rel {
		t.Fatalf("hand-made %s: init runs in cgroup %s, want %s", c.Name, c.Cgroup, rel)
	}
	c.CgroupsV1 = nil
	return c
}

func mustIndex(ns *testnet.Netns, link string) int {
	i, _ := ns.LinkIndex(link)
	return i
}

// mkdirCgroup creates mnt/rel and its parents, retrying when another test
// removes a shared parent between the mkdirs.
func mkdirCgroup(mnt, rel string) error {
	var err error
	for range 10 {
		if err = os.MkdirAll(filepath.Join(mnt, rel), 0o755); err == nil || !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return err
}

// removeCgroup kills what runs in mnt/rel, removes it, and removes its
// parents up to the cgroup2 mount if they are empty (other tests may still
// use them).
func removeCgroup(mnt, rel string) error {
	dir := filepath.Join(mnt, rel)
	if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("kill %s: %w", dir, err)
	}
	var err error
	for range 500 {
		if err = unix.Rmdir(dir); err == nil || errors.Is(err, os.ErrNotExist) {
			err = nil
			break
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("remove cgroup %s: %w", dir, err)
	}
	for p := filepath.Dir(rel); p != "/" && p != "."; p = filepath.Dir(p) {
		if unix.Rmdir(filepath.Join(mnt, p)) != nil {
			break
		}
	}
	return nil
}

// HostDial dials address from the hand-made network's host-side namespace.
func (n *HandMadeNet) HostDial(ctx context.Context, network, address string) (net.Conn, error) {
	return n.Host.Dial(ctx, network, address)
}

// String describes the network.
func (n *HandMadeNet) String() string {
	return n.Host.Name + "/" + n.Bridge + " " + n.Subnet.String() + " gw " + n.Gateway.String() + " next ." + strconv.Itoa(int(n.next))
}
