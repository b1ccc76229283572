package engine

import (
	"context"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netmeter/netmeter/internal/testnet"
)

// pinDir mounts a private BPF filesystem for the test's pins and removes it
// (and every pin in it) at the end.
func pinDir(t *testing.T) string {
	t.Helper()
	mnt := t.TempDir()
	if err := unix.Mount("bpf", mnt, "bpf", 0, "mode=0700"); err != nil {
		t.Fatalf("mount bpffs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount bpffs: %v", err)
		}
	})
	return filepath.Join(mnt, "netmeter")
}

func TestPinPathMustBeBPFFS(t *testing.T) {
	testnet.RequirePrivileged(t)
	_, err := Open(Options{PinPath: filepath.Join(t.TempDir(), "netmeter")})
	if err == nil || !strings.Contains(err.Error(), "mount -t bpf bpf") {
		t.Fatalf("err = %v, want the mount command", err)
	}
}

// TestPinnedEngineKeepsCountingWhileClosed: bytes sent while no agent runs,
// and a socket that dies then, are in the next agent's first reading.
func TestPinnedEngineKeepsCountingWhileClosed(t *testing.T) {
	testnet.RequirePrivileged(t)
	opt := Options{PinPath: pinDir(t)}
	a, err := Open(opt)
	if err != nil {
		t.Fatal(err)
	}
	if a.Reopened() {
		t.Fatal("first Open reopened something")
	}
	defer Unpin(opt.PinPath)
	ctx := context.Background()
	ln, err := (*testnet.Netns)(nil).ListenTCP(ctx, "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	long, err := (*testnet.Netns)(nil).Dial(ctx, "tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer long.Close()
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, srv)
	local := netip.MustParseAddrPort(long.LocalAddr().String())
	find := func(r Reading) (Socket, bool) {
		for _, s := range r.Live {
			if s.Local == local {
				return s, true
			}
		}
		return Socket{}, false
	}
	if _, err := long.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	r, err := a.Read()
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := find(r); !ok || s.Traffic.TxPayload != 1000 {
		t.Fatalf("before closing: %+v %v", s, ok)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	// No agent runs: the kernel keeps counting into the pinned maps.
	if _, err := long.Write(make([]byte, 2000)); err != nil {
		t.Fatal(err)
	}
	short, err := (*testnet.Netns)(nil).Dial(ctx, "tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	shortLocal := netip.MustParseAddrPort(short.LocalAddr().String())
	short.Write(make([]byte, 500))
	short.Close()
	time.Sleep(200 * time.Millisecond)

	b, err := Open(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !b.Reopened() {
		t.Fatal("second Open did not reopen the pinned engine")
	}
	var dead []Socket
	var r2 Reading
	for range 20 {
		if r2, err = b.Read(); err != nil {
			t.Fatal(err)
		}
		dead = append(dead, r2.Dead...)
		if len(dead) > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s, ok := find(r2); !ok || s.Traffic.TxPayload != 3000 {
		t.Errorf("long-lived socket after reopening: %+v %v, want 3000 payload bytes", s.Traffic, ok)
	}
	found := false
	for _, s := range dead {
		if s.Local == shortLocal {
			found = true
			if s.Traffic.TxPayload != 500 {
				t.Errorf("socket that died while closed: %+v", s.Traffic)
			}
		}
	}
	if !found {
		t.Errorf("the final record of the socket that died while no agent ran is lost")
	}
}

// TestStalePinsReplaced: pins of another build are removed, not reused.
func TestStalePinsReplaced(t *testing.T) {
	testnet.RequirePrivileged(t)
	opt := Options{PinPath: pinDir(t)}
	a, err := Open(opt)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	// Pretend the pins came from another build.
	if err := os.Rename(versionDir(opt.PinPath), filepath.Join(opt.PinPath, "v-0000000000000000")); err != nil {
		t.Fatal(err)
	}
	b, err := Open(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer Unpin(opt.PinPath)
	defer b.Close()
	if b.Reopened() {
		t.Fatal("reopened pins of another build")
	}
}
