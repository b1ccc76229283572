package netmeter_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netmeter/netmeter"
	"github.com/netmeter/netmeter/internal/testnet"
)

// fakeDockerCgroup makes a cgroup2 directory with a Docker-like path, so a
// child placed in it looks like a container with that id.
func fakeDockerCgroup(t *testing.T, id string) *os.File {
	t.Helper()
	cg := testnet.NewCgroup(t)
	dir := filepath.Join(cg.Path, "docker", id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
		for range 50 {
			if os.Remove(dir) == nil || os.IsNotExist(os.Remove(filepath.Join(cg.Path, "docker"))) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		os.Remove(filepath.Join(cg.Path, "docker"))
	})
	return f
}

// TestLedgerSurvivesRestart restarts the monitor in the middle of a
// container's traffic: the month-to-date total of its account equals what it
// sent, with nothing lost while no monitor ran and nothing counted twice.
func TestLedgerSurvivesRestart(t *testing.T) {
	testnet.RequirePrivileged(t)
	mnt := t.TempDir()
	if err := unix.Mount("bpf", mnt, "bpf", 0, "mode=0700"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	pin := filepath.Join(mnt, "netmeter")
	defer netmeter.Unpin(pin)
	state := filepath.Join(t.TempDir(), "state.json")
	id := strings.Repeat("0123456789abcdef", 4)
	account := id[:12] // no runtime answers for a hand-made container
	opts := []netmeter.Option{netmeter.WithInterval(100 * time.Millisecond), netmeter.WithLedger(state, 1), netmeter.WithPinPath(pin)}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ln, err := (*testnet.Netns)(nil).ListenTCP(ctx, "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := testnet.ServeTCP(ln)
	defer srv.Close()

	a, err := netmeter.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	const conns, bytes = 4000, 20000
	cgf := fakeDockerCgroup(t, id)
	cmd := testnet.Command(t, nil, nil, testnet.RoleTCPSend, "-addr", srv.Addr().String(),
		"-bytes", strconv.Itoa(bytes), "-conns", strconv.Itoa(conns))
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(cgf.Fd())
	child := testnet.StartChild(t, cmd)
	if _, err := child.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // mid-traffic
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	mid := total(a, account)
	time.Sleep(300 * time.Millisecond) // no monitor runs; the pinned engine counts on

	b, err := netmeter.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := child.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Wait(ctx, conns); err != nil {
		t.Fatal(err)
	}
	var got netmeter.Traffic
	for range 50 { // until the last sockets' final records are in
		time.Sleep(200 * time.Millisecond)
		if got = total(b, account); got.TxPayload == uint64(res.Bytes) {
			break
		}
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("sent %d B over %d connections; ledger %s: %d B at the restart, %d B at the end (IP %d B)",
		res.Bytes, res.Conns, account, mid.TxPayload, got.TxPayload, got.TxBytes)
	if mid.TxPayload == 0 || mid.TxPayload >= uint64(res.Bytes) {
		t.Errorf("the restart was not in the middle of the traffic (%d of %d)", mid.TxPayload, res.Bytes)
	}
	if got.TxPayload != uint64(res.Bytes) || res.Bytes != conns*bytes {
		t.Errorf("ledger %d payload bytes, want %d: lost or double counted across the restart", got.TxPayload, res.Bytes)
	}
	// A third monitor reads the same month-to-date from the state file.
	c, _ := netmeter.New(append(opts, netmeter.WithCaptureTimeout(300*time.Millisecond))...)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	if again := total(c, account); again.TxPayload != got.TxPayload {
		t.Errorf("after another restart: %d, want %d", again.TxPayload, got.TxPayload)
	}
}

func total(m *netmeter.Monitor, account string) netmeter.Traffic {
	var t netmeter.Traffic
	for _, e := range m.Ledger(m.Period(time.Now())) {
		if e.Account == account {
			t = t.Add(e.Total)
		}
	}
	return t
}
