package netmeter_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/netmeter/netmeter"
	"github.com/netmeter/netmeter/internal/testnet"
)

func TestMain(m *testing.M) { testnet.Main(m) }

func TestOptionsValidate(t *testing.T) {
	for _, o := range []netmeter.Option{
		netmeter.WithInterval(time.Millisecond),
		netmeter.WithQueueSize(0),
		netmeter.WithCaptureTimeout(-time.Second),
		netmeter.WithHistory(0),
		netmeter.WithLimits(-1, 0),
	} {
		if _, err := netmeter.New(o); err == nil {
			t.Errorf("option accepted a bad value")
		}
	}
	m, err := netmeter.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(); !errors.Is(err, netmeter.ErrNotStarted) {
		t.Errorf("Stop before Start = %v", err)
	}
}

// TestInterfacesOnlyWithCaptureTimeout needs no privileges: interfaces only,
// stopping by itself.
func TestInterfacesOnlyWithCaptureTimeout(t *testing.T) {
	m, err := netmeter.New(netmeter.WithoutEngine(), netmeter.WithInterval(50*time.Millisecond),
		netmeter.WithCaptureTimeout(300*time.Millisecond), netmeter.WithDevices("lo"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	sub := m.Subscribe(context.Background())
	select {
	case <-m.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("capture timeout did not stop the monitor")
	}
	n := 0
	for s := range sub { // closed at the end
		n++
		if len(s.Interfaces) != 1 || s.Interfaces[0].Name != "lo" || s.Engine != nil {
			t.Fatalf("snapshot %+v", s)
		}
	}
	if n < 3 || m.Err() != nil {
		t.Fatalf("%d snapshots, err %v", n, m.Err())
	}
}

// TestPreexistingConnectionAndRates: a connection this process opened before
// the monitor started is attributed to this pid exactly; its rates fall to
// zero within one 2 s window after the traffic stops.
func TestPreexistingConnectionAndRates(t *testing.T) {
	testnet.RequirePrivileged(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	received := make(chan int64, 1)
	go func() { n, _ := io.Copy(io.Discard, server); received <- n }()

	m, err := netmeter.New(netmeter.WithInterval(200 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	sub := m.Subscribe(context.Background())
	<-sub // the baseline

	const chunk, rounds = 1 << 20, 8 // 8 MiB over ~1.6 s
	buf := make([]byte, chunk)
	for range rounds {
		if _, err := client.Write(buf); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	client.(*net.TCPConn).CloseWrite()
	if n := <-received; n != chunk*rounds {
		t.Fatalf("server received %d", n)
	}
	// The traffic has stopped once the last packets (FIN, ACK) are counted:
	// the totals stay the same for three readings. From then on, every rate
	// must fall to zero within one 2 s window.
	var me netmeter.Process
	var stopped time.Time
	var last netmeter.Traffic
	still := 0
	for s := range sub {
		for _, p := range s.Processes {
			if p.PID == os.Getpid() {
				me = p
			}
		}
		if stopped.IsZero() {
			if me.Total == last {
				still++
			} else {
				still, last = 0, me.Total
			}
			if still == 3 {
				stopped = s.Time.Add(-3 * 200 * time.Millisecond)
			}
			continue
		}
		if s.Time.Sub(stopped) > 2500*time.Millisecond {
			break
		}
	}
	t.Logf("pid %d %q total %+v; rates after stop: tx %+v", me.PID, me.Comm, me.Total, me.TxRate)
	if me.Total.TxPayload != chunk*rounds || me.Total.RxPayload != chunk*rounds {
		t.Errorf("payload tx %d rx %d, want %d each (client and server are both this pid)", me.Total.TxPayload, me.Total.RxPayload, chunk*rounds)
	}
	if me.TxRate.Max <= 0 {
		t.Error("no rate was ever measured")
	}
	if me.TxRate.Current != 0 || me.TxRate.Window2s != 0 || me.RxRate.Window2s != 0 {
		t.Errorf("rates did not fall to zero 2.5 s after the traffic stopped: tx %+v rx %+v", me.TxRate, me.RxRate)
	}
	var ranked *netmeter.ProcessUsage
	for _, u := range m.ProcessRank(0, time.Minute) { // other processes on the host may rank higher
		if u.PID == os.Getpid() {
			ranked = &u
		}
	}
	if ranked == nil || ranked.Traffic.TxPayload != chunk*rounds || ranked.TxRate <= 0 {
		t.Errorf("this process in the rank: %+v", ranked)
	}
	var conn *netmeter.Connection
	for _, c := range m.Connections() {
		if c.Owner.PID == os.Getpid() && c.Peer != nil && c.Total.TxPayload == chunk*rounds {
			conn = &c
		}
	}
	if conn == nil {
		t.Errorf("the loopback connection is not one connection with two ends: %+v", m.Connections())
	}
}
