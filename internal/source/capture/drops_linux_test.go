package capture

import (
	"context"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/testnet"
)

// TestRingFullCounted: with a 16 KiB ring and a burst of 2000 datagrams of
// 1000 bytes, the kernel drops records, and every datagram is either
// written or counted as dropped (written + dropped = sent, exactly).
func TestRingFullCounted(t *testing.T) {
	testnet.RequirePrivileged(t)
	const sent = 2000
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ready := make(chan struct{})
	type out struct {
		res Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := Run(ctx, Options{Pids: []int{os.Getpid()}, RingSize: 16 << 10, Ready: func(string) { close(ready) }}, io.Discard)
		done <- out{res, err}
	}()
	select {
	case <-ready:
	case o := <-done:
		t.Fatal(o.err)
	}
	// Created after the start: selected by sock_create. Nothing listens
	// on port 9, and an unconnected socket ignores the ICMP errors.
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	payload := make([]byte, 1000)
	for range sent {
		if _, err := c.WriteTo(payload, dst); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond) // the reader drains what the ring holds
	cancel()
	o := <-done
	if o.err != nil {
		t.Fatal(o.err)
	}
	t.Logf("sent %d: %d written, %d seen, %d dropped (ring full)", sent, o.res.Written, o.res.Seen, o.res.Dropped)
	if uint64(o.res.Written) != o.res.Seen || o.res.Seen+o.res.Dropped != sent {
		t.Errorf("written %d, seen %d, dropped %d: want written = seen and seen + dropped = %d", o.res.Written, o.res.Seen, o.res.Dropped, sent)
	}
	if o.res.Dropped == 0 {
		t.Log("the reader kept up with a 16 KiB ring; no drop to count this time")
	}
}
