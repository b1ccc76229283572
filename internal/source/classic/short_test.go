package classic_test

import (
	"bufio"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/testnet"
)

// nethogs runs nethogs 0.8.7 in trace mode (-t, totals in bytes with -v 2)
// on lo inside ns, and returns a function that stops it and returns its
// last totals per pid ("sent", "received"), and what it called unknown.
func nethogs(t *testing.T, ns *testnet.Netns) func() (map[int][2]uint64, [2]uint64) {
	t.Helper()
	const path = "/usr/sbin/nethogs"
	cmd := exec.Command(path, "-t", "-a", "-v", "2", "-d", "1", "-C", "lo")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = nil
	if err := ns.Start(cmd); err != nil {
		t.Skipf("nethogs not runnable: %v", err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	lines := make(chan []string, 1)
	go func() {
		var block []string
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l := sc.Text()
			if strings.HasPrefix(l, "Refreshing:") {
				select {
				case <-lines:
				default:
				}
				lines <- block
				block = nil
				continue
			}
			block = append(block, l)
		}
		select {
		case <-lines:
		default:
		}
		lines <- block
	}()
	time.Sleep(2 * time.Second) // nethogs opens its capture
	return func() (map[int][2]uint64, [2]uint64) {
		time.Sleep(2 * time.Second) // one more refresh with everything
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		var last []string
		select {
		case last = <-lines:
		case <-time.After(5 * time.Second):
		}
		m := map[int][2]uint64{}
		var unknown [2]uint64
		for _, l := range last {
			f := strings.Split(l, "\t")
			if len(f) != 3 {
				continue
			}
			sent, _ := strconv.ParseFloat(f[1], 64)
			recv, _ := strconv.ParseFloat(f[2], 64)
			// "program/pid/uid", or "unknown TCP/0/0"
			parts := strings.Split(f[0], "/")
			if len(parts) < 3 {
				continue
			}
			pid, _ := strconv.Atoi(parts[len(parts)-2])
			if pid == 0 {
				unknown[0] += uint64(sent)
				unknown[1] += uint64(recv)
				continue
			}
			v := m[pid]
			m[pid] = [2]uint64{v[0] + uint64(sent), v[1] + uint64(recv)}
		}
		return m, unknown
	}
}

// TestShortConnections: 200 connections of 20,000 bytes each, one after
// another from one client process to one server, in a fresh namespace.
// Each lives about a millisecond, shorter than the capture's block timeout
// plus one /proc scan, so the classic engine cannot see most client sockets
// in /proc; the server ends are charged to the listener. Measured next to
// the eBPF engine (which sees every socket) and nethogs on the same
// traffic.
func TestShortConnections(t *testing.T) {
	testnet.RequirePrivileged(t)
	for _, tt := range []struct {
		name string
		hold time.Duration
		// clientFloor is the share of client payload the classic engine
		// must attribute: none for connections shorter than a scan, most
		// for those living longer than the block timeout plus a scan.
		clientFloor float64
	}{
		{"1ms", 0, 0},
		{"hold20ms", 20 * time.Millisecond, 0.7},
	} {
		t.Run(tt.name, func(t *testing.T) { shortConnections(t, tt.hold, tt.clientFloor) })
	}
}

func shortConnections(t *testing.T, hold time.Duration, clientFloor float64) {
	ns := testnet.NewNetns(t)
	cl, cc, ec := openBoth(t, ns)
	stopHogs := nethogs(t, ns)
	const n, conns = 20000, 200
	server, client := runTCPHold(t, ns, n, conns, hold)
	hogs, hogsUnknown := stopHogs()
	settle(cc, ec)
	kb, kp := loIPBytes(t, ns)
	st := cl.Stats()
	sp, cp := uint32(server.Pid()), uint32(client.Pid())
	t.Logf("lo (kernel): %d IP bytes, %d packets; classic ring: %d packets, %d dropped, %d scans (%d failed)",
		kb, kp, st.Packets, st.Drops, st.Scans, st.ScanErrors)
	var srvPort uint16
	for _, c := range []*collector{cc, ec} {
		if c == nil {
			continue
		}
		if c.err != nil {
			t.Fatalf("%s: %v", c.name, c.err)
		}
		m := c.byPID()
		if srvPort == 0 {
			srvPort = c.serverPort(sp)
		}
		t.Logf("%-7s client: %d/%d connections, %s", c.name, c.conns(cp, srvPort), conns, fmtT(m[cp]))
		t.Logf("%-7s server: %d/%d connections, %s", c.name, c.conns(sp, srvPort), conns, fmtT(m[sp]))
		t.Logf("%-7s no owner: %s, unattributed: %s", c.name, fmtT(m[0]), fmtT(c.kernel))
	}
	t.Logf("nethogs client: sent %d B, received %d B", hogs[int(cp)][0], hogs[int(cp)][1])
	t.Logf("nethogs server: sent %d B, received %d B", hogs[int(sp)][0], hogs[int(sp)][1])
	t.Logf("nethogs unknown: sent %d B, received %d B; others %v", hogsUnknown[0], hogsUnknown[1], hogs)

	m := cc.byPID()
	want := uint64(n * conns)
	// Never the wrong way round: the client's payload is the client's
	// transmit and the server's receive, never the opposite.
	if m[cp].RxPayload > testnet.TCPAckSize*conns || m[sp].TxPayload > testnet.TCPAckSize*conns {
		t.Errorf("direction: client rx payload %d, server tx payload %d (at most %d each)",
			m[cp].RxPayload, m[sp].TxPayload, testnet.TCPAckSize*conns)
	}
	// Floors, from the measurements in docs/CLASSIC.md: the server side is
	// charged to the listener (a socket the scan always sees), so all but a
	// few of its bytes are attributed; the client side is mostly missed.
	if m[sp].RxPayload < want*9/10 {
		t.Errorf("server received payload %d attributed, want at least 90%% of %d", m[sp].RxPayload, want)
	}
	if got := float64(m[cp].TxPayload) / float64(want); got < clientFloor {
		t.Errorf("client sent payload %d attributed (%.0f%%), want at least %.0f%% of %d", m[cp].TxPayload, 100*got, 100*clientFloor, want)
	}
	// Nothing counted twice: attributed and unattributed bytes together are
	// at most what lo carried, each packet once as tx and once as rx.
	var tx uint64
	for _, tr := range m {
		tx += tr.TxBytes
	}
	if tx+cc.kernel.TxBytes > kb {
		t.Errorf("classic counted %d tx bytes (%d unattributed), lo carried %d", tx+cc.kernel.TxBytes, cc.kernel.TxBytes, kb)
	}
}

// serverPort returns the port pid listens on.
func (c *collector) serverPort(pid uint32) uint16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.socks {
		if s.HasOwner && s.Owner.TGID == pid && s.State == 10 {
			return s.Local.Port()
		}
	}
	return 0
}
