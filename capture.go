package netmeter

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/netmeter/netmeter/internal/pcapfilter"
	"github.com/netmeter/netmeter/internal/source/capture"
)

// WithPcapFilter keeps only the packets a pcap-filter(7) expression
// accepts in the capture WithStorePcap writes. Supported are host, net,
// port, portrange, proto, src/dst, ip, ip6, arp, rarp, tcp, udp, sctp,
// icmp, icmp6, and/or/not and parentheses, compiled in pure Go (no
// libpcap); anything else makes New fail with an error naming the token.
// It has no effect without WithStorePcap.
func WithPcapFilter(expr string) Option {
	return func(c *config) error {
		if _, err := pcapfilter.Compile(expr, pcapfilter.LinkTypeEthernet, 0); err != nil {
			return fmt.Errorf("netmeter: WithPcapFilter(%q): %w", expr, err)
		}
		c.pcapFilter = expr
		return nil
	}
}

// WithStorePcap makes the Monitor write the packets it sees, while it
// runs, to a pcapng file at path (created or truncated by Start, flushed
// and closed when collection ends) that tcpdump and Wireshark read.
//
// With exactly one device (WithDevices) it captures that interface's
// Ethernet frames (AF_PACKET, in the WithNetns namespace). Otherwise it
// captures the packets of every local socket, in every namespace, in the
// kernel (eBPF cgroup_skb; IP packets, link type RAW), the owning process
// in each packet's comment for sockets created after Start. A packet
// between two local sockets is written twice, leaving one and reaching the
// other (as tcpdump -i lo shows it twice). Packets the kernel could not
// hand over (buffer full) are counted (PcapStats); see docs/CAPTURE.md.
func WithStorePcap(path string) Option {
	return func(c *config) error {
		if path == "" {
			return errors.New("netmeter: WithStorePcap: empty path")
		}
		c.storePcap = path
		return nil
	}
}

// pcapRun is the capture a Monitor runs for WithStorePcap. res and err are
// written before done is closed and read only after.
type pcapRun struct {
	done chan struct{}
	res  capture.Result
	err  error
}

// startPcap starts the capture and waits until it is attached.
func (m *Monitor) startPcap(ctx context.Context) error {
	if m.cfg.storePcap == "" {
		return nil
	}
	f, err := os.Create(m.cfg.storePcap)
	if err != nil {
		return fmt.Errorf("netmeter: WithStorePcap: %w", err)
	}
	o := capture.Options{Netns: m.cfg.netns, Filter: m.cfg.pcapFilter, AllSockets: true}
	if len(m.cfg.devices) == 1 {
		o.Interface = m.cfg.devices[0]
	}
	r := &pcapRun{done: make(chan struct{})}
	ready := make(chan struct{})
	o.Ready = func(string) { close(ready) }
	go func() {
		defer close(r.done)
		res, err := capture.Run(ctx, o, f)
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		r.res, r.err = res, err
	}()
	select {
	case <-ready:
		m.mu.Lock()
		m.pcap = r
		m.mu.Unlock()
		return nil
	case <-r.done:
		_ = os.Remove(m.cfg.storePcap)
		return fmt.Errorf("netmeter: WithStorePcap: %w", r.err)
	}
}

// stopPcap waits for the capture to flush (its context has ended).
func (m *Monitor) stopPcap() error {
	m.mu.Lock()
	r := m.pcap
	m.mu.Unlock()
	if r == nil {
		return nil
	}
	<-r.done
	if r.err != nil {
		return fmt.Errorf("netmeter: WithStorePcap: %w", r.err)
	}
	return nil
}

// PcapStats are the counters of the WithStorePcap capture.
type PcapStats struct {
	Written int    // packets written to the file
	Dropped uint64 // packets lost because a kernel buffer was full
}

// PcapStats returns the counters of the WithStorePcap capture once
// collection has ended (Done is closed), and false before or without it.
func (m *Monitor) PcapStats() (PcapStats, bool) {
	m.mu.Lock()
	r := m.pcap
	m.mu.Unlock()
	if r == nil {
		return PcapStats{}, false
	}
	select {
	case <-r.done:
	default:
		return PcapStats{}, false
	}
	return PcapStats{Written: r.res.Written, Dropped: r.res.Dropped}, true
}
