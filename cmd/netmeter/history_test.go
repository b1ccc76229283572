package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/testnet"
)

// The agent's history on the real kernel: traffic of a known size sent while
// the agent runs, while it is stopped, and after it starts again is all in
// the report, exactly once, and equals the kernel's own counter delta; the
// downtime is listed as a gap.
func TestServeHistoryContinuity(t *testing.T) {
	p := testnet.NewPair(t, testnet.WithoutIPv6())
	dir := t.TempDir()
	var conn *net.UDPConn
	if err := p.B.Do(func() (err error) {
		conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.B4, 0)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	rcv := testnet.ReceiveUDP(conn)
	defer rcv.Close()
	sink := conn.LocalAddr().String()
	send := func(k int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := testnet.SendUDP(ctx, p.A.Dial, sink, k, 1000); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"serve", "--engine", "off", "--netns", p.A.Name, "--interval", "200ms", "--data-dir", dir}
	serve := func(during func()) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() { done <- run(ctx, t, &bytes.Buffer{}, args...) }()
		time.Sleep(700 * time.Millisecond)
		during()
		time.Sleep(700 * time.Millisecond)
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("serve exited %d", code)
		}
	}
	start, err := p.A.LinkCounters(testnet.PairLinkA)
	if err != nil {
		t.Fatal(err)
	}
	serve(func() { send(300) })
	send(500) // while no agent runs
	time.Sleep(6 * time.Second)
	serve(func() { send(200) })
	end, err := p.A.LinkCounters(testnet.PairLinkA)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code := run(context.Background(), t, &out, "report", "--data-dir", dir, "-h", "-i", p.A.Name+"/"+testnet.PairLinkA, "--json"); code != 0 {
		t.Fatalf("report exited %d", code)
	}
	var rep reportOut
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	var tx, txp uint64
	for _, r := range rep.Rows {
		tx += r.Tx
		txp += r.TxPkts
	}
	kernel := end.TxBytes - start.TxBytes
	t.Logf("report tx %d bytes %d packets; kernel Δ %d bytes %d packets; gaps %+v", tx, txp, kernel, end.TxPackets-start.TxPackets, rep.Gaps)
	const want = 1000 * (1000 + 8 + 20 + 14)
	if tx != want || kernel != want || txp != 1000 {
		t.Errorf("history tx %d bytes / %d packets, kernel Δ %d; want %d bytes and 1000 packets in both", tx, txp, kernel, want)
	}
	if len(rep.Gaps) != 1 || rep.Gaps[0].End.Sub(rep.Gaps[0].Start) < 5*time.Second {
		t.Errorf("gaps %+v, want the one downtime of ≥ 6 s", rep.Gaps)
	}
}
