package iface

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/netmeter/netmeter/internal/nsutil"
)

// ProcFS reads /proc/net/dev. It is the fallback when rtnetlink is
// unavailable; it has no link attributes, and some of its columns are sums of
// several stats64 counters (see ParseProcNetDev).
type ProcFS struct {
	nsPath string
	path   string // a fixture file; empty reads the live kernel file
}

// NewProcFS returns a reader of /proc/net/dev in the namespace at nsPath
// ("" = the caller's).
func NewProcFS(nsPath string) *ProcFS { return &ProcFS{nsPath: nsPath} }

// Name implements Source.
func (p *ProcFS) Name() string { return "procfs" }

// Close implements Source.
func (p *ProcFS) Close() error { return nil }

// Links implements Source.
func (p *ProcFS) Links() ([]Link, error) {
	var data []byte
	err := nsutil.Do(p.nsPath, func() error {
		path := p.path
		if path == "" {
			// thread-self: the namespace of this (possibly switched) thread.
			path = "/proc/thread-self/net/dev"
		}
		var err error
		data, err = os.ReadFile(path)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read /proc/net/dev: %w", err)
	}
	return ParseProcNetDev(bytes.NewReader(data))
}

// ParseProcNetDev parses the kernel's /proc/net/dev. Column mapping follows
// net/core/net-procfs.c: "drop" is rx_dropped+rx_missed_errors (stored in
// RxDropped), "frame" is the sum of rx length/over/crc/frame errors (stored in
// RxFrameErrors), "carrier" is the sum of tx carrier/aborted/window/heartbeat
// errors (stored in TxCarrierErrors).
func ParseProcNetDev(r io.Reader) ([]Link, error) {
	sc := bufio.NewScanner(r)
	var links []Link
	line := 0
	for sc.Scan() {
		line++
		if line <= 2 {
			continue // two header lines
		}
		text := sc.Text()
		colon := strings.LastIndexByte(text, ':')
		if colon < 0 {
			return nil, fmt.Errorf("/proc/net/dev line %d: no ':' after the interface name", line)
		}
		name := strings.TrimSpace(text[:colon])
		if name == "" {
			return nil, fmt.Errorf("/proc/net/dev line %d: empty interface name", line)
		}
		fields := strings.Fields(text[colon+1:])
		if len(fields) != 16 {
			return nil, fmt.Errorf("/proc/net/dev line %d (%s): %d counters, want 16", line, name, len(fields))
		}
		var v [16]uint64
		for i, f := range fields {
			n, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/net/dev line %d (%s) column %d: %w", line, name, i+1, err)
			}
			v[i] = n
		}
		l := Link{Name: name, OperState: "unknown"}
		c := &l.Counters
		c.RxBytes, c.RxPackets, c.RxErrors, c.RxDropped = v[0], v[1], v[2], v[3]
		c.RxFIFOErrors, c.RxFrameErrors, c.RxCompressed, c.Multicast = v[4], v[5], v[6], v[7]
		c.TxBytes, c.TxPackets, c.TxErrors, c.TxDropped = v[8], v[9], v[10], v[11]
		c.TxFIFOErrors, c.Collisions, c.TxCarrierErrors, c.TxCompressed = v[12], v[13], v[14], v[15]
		if name == "lo" {
			l.Kind = "loopback"
		}
		links = append(links, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read /proc/net/dev: %w", err)
	}
	if line < 2 {
		return nil, fmt.Errorf("/proc/net/dev: missing header")
	}
	return links, nil
}
