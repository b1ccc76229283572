package containertest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/nsutil"
	"github.com/netmeter/netmeter/internal/testnet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var sprintf = fmt.Sprintf

// lockPath serialises the choice of subnets and interface names between test
// processes running at the same time (go test runs packages in parallel).
const lockPath = "/run/netmeter-test.lock"

// requireTools skips (or, with NETMETER_REQUIRE_PRIVILEGED=1, fails) t unless
// it runs as root and every path in bins is executable.
func requireTools(t testing.TB, what string, bins ...string) {
	t.Helper()
	testnet.RequirePrivileged(t)
	var missing []string
	for _, b := range bins {
		if fi, err := os.Stat(b); err != nil || fi.Mode()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	if len(missing) == 0 {
		return
	}
	why := fmt.Sprintf("%s needs %s (run .ci/containers-setup.sh)", what, strings.Join(missing, ", "))
	if os.Getenv(testnet.EnvRequirePrivileged) == "1" {
		t.Fatalf("%s; %s=1", why, testnet.EnvRequirePrivileged)
	}
	t.Skipf("%s (set %s=1 to fail instead)", why, testnet.EnvRequirePrivileged)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// withHostLock runs fn holding an exclusive flock on lockPath.
func withHostLock(fn func() error) error {
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return fn()
}

// freeSubnet picks a /24 in base (a /16) that overlaps no route or address of
// the host. Call it under withHostLock and create the interface before
// unlocking.
func freeSubnet(base netip.Prefix) (netip.Prefix, error) {
	var used []netip.Prefix
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		if p, ok := ipnetPrefix(r.Dst); ok {
			used = append(used, p)
		}
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if p, ok := ipnetPrefix(a.IPNet); ok {
			used = append(used, p.Masked())
		}
	}
	b := base.Addr().As4()
	for range 64 {
		n, _ := rand.Int(rand.Reader, big.NewInt(254))
		b[2] = byte(n.Int64() + 1)
		cand := netip.PrefixFrom(netip.AddrFrom4(b), 24)
		ok := true
		for _, u := range used {
			if u.Bits() > 0 && u.Overlaps(cand) {
				ok = false
				break
			}
		}
		if ok {
			return cand, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /24 in %s", base)
}

func ipnetPrefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

// addHostBridge creates bridge name in the host namespace with gw (like
// 10.213.7.1/24) and brings it up.
func addHostBridge(name string, gw netip.Prefix) error {
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
	if err := netlink.LinkAdd(br); err != nil {
		return fmt.Errorf("add bridge %s: %w", name, err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: gw.Addr().AsSlice(), Mask: net.CIDRMask(gw.Bits(), 32)}}
	if err := netlink.AddrAdd(l, addr); err != nil {
		_ = netlink.LinkDel(l)
		return fmt.Errorf("address %s on %s: %w", gw, name, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		_ = netlink.LinkDel(l)
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

// delHostLink deletes the host interface name if it exists.
func delHostLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return err
	}
	return netlink.LinkDel(l)
}

// stopPID sends SIGTERM to pid (a process this package started and whose
// Wait runs in done), waits up to grace, then kills it.
func stopPID(cmd *exec.Cmd, done <-chan struct{}, grace time.Duration) error {
	if cmd.Process == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return nil
	case <-time.After(grace):
	}
	_ = cmd.Process.Kill()
	select {
	case <-done:
		return fmt.Errorf("pid %d did not stop in %v after SIGTERM; killed", cmd.Process.Pid, grace)
	case <-time.After(5 * time.Second):
		return fmt.Errorf("pid %d survives SIGKILL", cmd.Process.Pid)
	}
}

// pidsUnder returns the pids whose command line mentions dir: the processes
// a private daemon rooted in dir started (containerd, shims, proxies).
func pidsUnder(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte(dir)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killPIDs kills each pid in pids and waits, up to 5 s, until they are gone.
func killPIDs(pids []int) {
	for _, p := range pids {
		_ = unix.Kill(p, unix.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range pids {
		for time.Now().Before(deadline) {
			if err := unix.Kill(p, 0); err != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// unmountUnder lazily unmounts every mount point at or below dir, deepest
// first, so os.RemoveAll can delete it.
func unmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var mps []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := nsutil.UnescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mps = append(mps, mp)
		}
	}
	sort.Slice(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
	for _, mp := range mps {
		_ = unix.Unmount(mp, unix.MNT_DETACH)
	}
}

// removeTree unmounts what is mounted below dir and removes it.
func removeTree(dir string) error {
	unmountUnder(dir)
	err := os.RemoveAll(dir)
	if err != nil {
		// Overlay work dirs can be briefly busy after unmount.
		time.Sleep(200 * time.Millisecond)
		unmountUnder(dir)
		err = os.RemoveAll(dir)
	}
	return err
}

// doInNetns runs fn on a locked OS thread switched into the network
// namespace at path (like /proc/1234/ns/net) and switches back.
func doInNetns(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(orig)
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open netns %s: %w", path, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: the runtime discards it on exit.
			errc <- errors.Join(ferr, fmt.Errorf("switch back from netns %s: %w", path, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// ownerFile, in each private daemon directory, names the test process that
// owns it and the bridge it made, so a later run can clean up after a test
// binary that died without running its cleanups (a panic, a timeout kill).
const ownerFile = "owner"

func writeOwner(dir, bridge string) error {
	return os.WriteFile(filepath.Join(dir, ownerFile), []byte(fmt.Sprintf("%d %s\n", os.Getpid(), bridge)), 0o644)
}

// reapStale removes the daemon directories matching pattern (a glob under
// os.TempDir) whose owner process is gone: it kills the processes still
// running from them, deletes their bridge and removes the directory.
func reapStale(pattern string, logf func(string, ...any)) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), pattern))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // not ours, or still being created
		}
		var pid int
		var bridge string
		if _, err := fmt.Sscan(string(b), &pid, &bridge); err != nil || pid <= 0 {
			continue
		}
		if pid == os.Getpid() || unix.Kill(pid, 0) == nil {
			continue
		}
		logf("removing %s left by dead test process %d", dir, pid)
		killPIDs(pidsUnder(dir))
		if bridge != "-" {
			_ = delHostLink(bridge)
		}
		_ = removeTree(dir)
	}
}
