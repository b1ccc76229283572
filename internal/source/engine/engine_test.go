package engine

import (
	"context"
	"io"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/testnet"
)

func TestMain(m *testing.M) { testnet.Main(m) }

func openEngine(t *testing.T) *Engine {
	t.Helper()
	testnet.RequirePrivileged(t)
	e, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

// collect reads until the sockets matching keep have all died, returning
// the final records by cookie.
func collect(t *testing.T, e *Engine, keep func(Socket) bool, want int) map[uint64]Socket {
	t.Helper()
	got := map[uint64]Socket{}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r, err := e.Read()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range r.Dead {
			if keep(s) {
				got[s.Cookie] = s
			}
		}
		if len(got) >= want {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("saw %d of %d final records", len(got), want)
	return nil
}

func TestLoopbackTCPPayloadExact(t *testing.T) {
	e := openEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 3 << 20
	ln, err := (*testnet.Netns)(nil).ListenTCP(ctx, "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := testnet.ServeTCP(ln)
	defer srv.Close()
	port := netip.MustParseAddrPort(srv.Addr().String()).Port()
	if _, err := testnet.SendTCP(ctx, (*testnet.Netns)(nil).Dial, srv.Addr().String(), n, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Wait(ctx, 1); err != nil {
		t.Fatal(err)
	}
	ours := func(s Socket) bool {
		return s.Protocol == 6 && (s.Local.Port() == port || s.Remote.Port() == port)
	}
	got := collect(t, e, ours, 2)
	for _, s := range got {
		t.Logf("%v → %v owner %d/%q payload tx %d rx %d, IP tx %d/%d pkts rx %d/%d pkts, acked %d received %d",
			s.Local, s.Remote, s.Owner.TGID, s.Owner.Comm, s.Traffic.TxPayload, s.Traffic.RxPayload,
			s.Traffic.TxBytes, s.Traffic.TxPackets, s.Traffic.RxBytes, s.Traffic.RxPackets, s.BytesAcked, s.BytesReceived)
		if s.Owner.TGID != uint32(os.Getpid()) {
			t.Errorf("owner %d, want %d", s.Owner.TGID, os.Getpid())
		}
		client := s.Remote.Port() == port
		wantTx, wantRx := uint64(n), uint64(testnet.TCPAckSize)
		if !client {
			wantTx, wantRx = wantRx, wantTx
		}
		if s.Traffic.TxPayload != wantTx || s.Traffic.RxPayload != wantRx {
			t.Errorf("client=%v payload tx %d rx %d, want %d %d", client, s.Traffic.TxPayload, s.Traffic.RxPayload, wantTx, wantRx)
		}
	}
}

// TestAdoptsOlderSockets: a connection opened before the engine, silent
// since, is listed with its inode and TCP's lifetime counters.
func TestAdoptsOlderSockets(t *testing.T) {
	testnet.RequirePrivileged(t)
	ln, err := (*testnet.Netns)(nil).ListenTCP(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := (*testnet.Netns)(nil).Dial(context.Background(), "tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := c.Write(make([]byte, 5000)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5000)
	if _, err := io.ReadFull(srv, buf); err != nil {
		t.Fatal(err)
	}
	e := openEngine(t) // after the traffic
	r, err := e.Read()
	if err != nil {
		t.Fatal(err)
	}
	local := netip.MustParseAddrPort(c.LocalAddr().String())
	for _, s := range r.Live {
		if s.Local == local {
			t.Logf("adopted %v → %v inode %d acked %d received %d traffic %+v", s.Local, s.Remote, s.Inode, s.BytesAcked, s.BytesReceived, s.Traffic)
			if s.Inode == 0 || s.BytesAcked != 5001 || s.Traffic != (snapshot.Traffic{}) {
				t.Errorf("adopted socket: inode %d acked %d (want 5000 + SYN) traffic %+v (want none since start)", s.Inode, s.BytesAcked, s.Traffic)
			}
			return
		}
	}
	t.Fatalf("socket %v opened before the engine is not listed", local)
}
