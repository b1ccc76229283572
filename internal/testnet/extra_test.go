package testnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGeneratorsBounded checks that generators stop at their context's
// deadline against a peer that never reads, and leave no goroutine behind.
func TestGeneratorsBounded(t *testing.T) {
	ctx := testCtx(t)
	before := runtime.NumGoroutine()

	ln, err := (*Netns)(nil).ListenTCP(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // held open, never read
		}
		close(accepted)
	}()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	start := time.Now()
	_, err = SendTCP(short, (*Netns)(nil).Dial, ln.Addr().String(), 1<<30, 1)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("SendTCP to a stalled peer: %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("SendTCP took %v past a 300ms deadline", d)
	}
	if c := <-accepted; c != nil {
		c.Close()
	}
	ln.Close()

	// A server closed with a connection mid-transfer.
	ln, err = (*Netns)(nil).ListenTCP(ctx, "tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	s := ServeTCP(ln)
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	short, cancel = context.WithTimeout(ctx, 100*time.Millisecond)
	if r, _ := s.Wait(short, 1); r.Conns != 0 {
		t.Errorf("server counted an unfinished connection: %+v", r)
	}
	cancel()
	s.Close()
	if _, err := io.ReadAll(c); err != nil {
		t.Logf("client after server close: %v", err)
	}
	c.Close()

	// A UDP receiver that gets fewer datagrams than expected reports loss.
	u, err := (*Netns)(nil).ListenUDP(ctx, "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := ReceiveUDP(u)
	if _, err := SendUDP(ctx, (*Netns)(nil).Dial, r.Addr().String(), 3, 10); err != nil {
		t.Fatal(err)
	}
	short, cancel = context.WithTimeout(ctx, 200*time.Millisecond)
	res, err := r.Wait(short, 5)
	cancel()
	if err != nil || res.Datagrams != 3 || res.Lost != 2 {
		t.Errorf("udp receiver: %+v, %v; want 3 datagrams, 2 lost", res, err)
	}
	r.Close()

	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestNetnsDoRestores(t *testing.T) {
	RequirePrivileged(t)
	ns := NewNetns(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	host := threadNetnsInode(t)
	sentinel := errors.New("fn failed")
	if err := ns.Do(func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("Do returned %v, want fn's error", err)
	}
	func() {
		defer func() { _ = recover() }()
		_ = ns.Do(func() error { panic("boom") })
	}()
	if got := threadNetnsInode(t); got != host {
		t.Errorf("thread left in netns %d after fn failed/panicked, want %d", got, host)
	}
}

// TestRequirePrivilegedProbe is run by TestRequirePrivileged as an
// unprivileged child; on its own it does nothing.
func TestRequirePrivilegedProbe(t *testing.T) {
	if os.Getenv("NETMETER_TESTNET_PROBE") != "1" {
		return
	}
	RequirePrivileged(t)
	t.Log("PROBE RAN")
}

func TestRequirePrivileged(t *testing.T) {
	RequirePrivileged(t)
	// Run a copy of the test binary as nobody, where the uid can reach it.
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "testnet.test")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		require string
		want    string
		fail    bool
	}{
		{"", "--- SKIP", false},
		{"1", "--- FAIL", true},
	} {
		cmd := exec.CommandContext(testCtx(t), bin, "-test.run=^TestRequirePrivilegedProbe$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "NETMETER_TESTNET_PROBE=1", EnvRequirePrivileged+"="+c.require)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if (err != nil) != c.fail || !strings.Contains(string(out), c.want) || strings.Contains(string(out), "PROBE RAN") {
			t.Errorf("as nobody with %s=%q: err %v, output:\n%s", EnvRequirePrivileged, c.require, err, out)
		}
	}
}

func TestNetnsStart(t *testing.T) {
	RequirePrivileged(t)
	ns := NewNetns(t)
	var out strings.Builder
	cmd := exec.Command("readlink", "/proc/self/ns/net")
	cmd.Stdout = &out
	if err := ns.Start(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("net:[%d]", ns.Inode()); strings.TrimSpace(out.String()) != want {
		t.Errorf("child runs in %s, want %s", out.String(), want)
	}
}
