package pipeline_test

import (
	"context"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netmeter/netmeter/internal/pipeline"
	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/testnet"
)

// poller takes snapshots by hand, so the test sees every interval.
type poller struct {
	t    *testing.T
	p    *pipeline.Pipeline
	snap []snapshot.Snapshot
}

func openPoller(t *testing.T) *poller {
	t.Helper()
	testnet.RequirePrivileged(t)
	p, err := pipeline.Open(pipeline.Config{Interval: 100 * time.Millisecond, Engine: "on", Source: "auto"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if p.HealthErr != nil || p.Loop.Health == nil {
		t.Fatalf("health hooks did not load: %v", p.HealthErr)
	}
	return &poller{t: t, p: p}
}

func (pl *poller) poll() snapshot.Snapshot {
	pl.t.Helper()
	s, err := pl.p.Loop.Poll()
	if err != nil {
		pl.t.Fatal(err)
	}
	pl.snap = append(pl.snap, s)
	return s
}

// Through the whole pipeline: the per-interval retransmission deltas of a
// lossy connection add up to the kernel's own count, the connection is the
// test's process, and the interval RTT is there.
func TestHealthThroughPipeline(t *testing.T) {
	pl := openPoller(t)
	p := testnet.NewPair(t, testnet.WithoutIPv6())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ln, err := p.B.ListenTCP(ctx, "tcp4", netip.AddrPortFrom(p.B4, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	srv := testnet.ServeTCP(ln)
	defer srv.Close()
	port := netip.MustParseAddrPort(srv.Addr().String()).Port()
	if err := p.B.DropIn(port, 3); err != nil {
		t.Fatal(err)
	}
	pl.poll()
	c, err := p.A.Dial(ctx, "tcp4", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lport := netip.MustParseAddrPort(c.LocalAddr().String()).Port()
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		var err error
		for i := 0; i < 128 && err == nil; i++ { // 8 MiB in 64 KiB writes
			_, err = c.Write(buf)
			time.Sleep(5 * time.Millisecond)
		}
		done <- err
	}()
	var werr error
	for running := true; running; {
		select {
		case werr = <-done:
			running = false
		case <-time.After(100 * time.Millisecond):
			pl.poll()
		}
	}
	if werr != nil {
		t.Fatal(werr)
	}
	// Let the last segments be acknowledged, then read the kernel's count.
	var kernel *netlink.InetDiagTCPInfoResp
	for range 100 {
		time.Sleep(20 * time.Millisecond)
		err := p.A.Do(func() error {
			res, err := netlink.SocketDiagTCPInfo(unix.AF_INET)
			for _, r := range res {
				if r.InetDiagMsg.ID.SourcePort == lport && r.InetDiagMsg.ID.DestinationPort == port {
					kernel = r
				}
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if kernel != nil && kernel.TCPInfo.Unacked == 0 {
			break
		}
	}
	last := pl.poll()
	var sum snapshot.TCPCounters
	var total snapshot.TCPCounters
	var samples uint32
	var conn *snapshot.Connection
	for _, s := range pl.snap {
		for i := range s.Connections {
			cn := &s.Connections[i]
			if cn.Local.Port != lport || cn.Remote.Port != port || cn.TCP == nil {
				continue
			}
			sum = sum.Add(cn.TCP.Delta)
			total = cn.TCP.Total
			samples += cn.TCP.Interval.Samples
			conn = cn
		}
	}
	if conn == nil {
		t.Fatalf("connection %d → %d has no TCP health in %d snapshots", lport, port, len(pl.snap))
	}
	t.Logf("%d snapshots; Σ delta retrans %d (fast %d rto %d), total %d, tcpi_total_retrans %d; Σ segs out %d (tcpi %d); %d RTT samples; srtt %d µs; owner %+v",
		len(pl.snap), sum.RetransSegs, sum.FastRetrans, sum.RTORetrans, total.RetransSegs, kernel.TCPInfo.Total_retrans,
		sum.SegsOut, kernel.TCPInfo.Segs_out, samples, conn.TCP.SRTT, conn.Owner)
	if total.RetransSegs == 0 {
		t.Fatal("3 % loss produced no retransmission")
	}
	if sum.RetransSegs != total.RetransSegs || total.RetransSegs != uint64(kernel.TCPInfo.Total_retrans) {
		t.Errorf("Σ per-interval retransmissions %d, total %d, kernel %d: want all equal", sum.RetransSegs, total.RetransSegs, kernel.TCPInfo.Total_retrans)
	}
	if sum.SegsOut != uint64(kernel.TCPInfo.Segs_out) {
		t.Errorf("Σ per-interval segments out %d, kernel %d", sum.SegsOut, kernel.TCPInfo.Segs_out)
	}
	if samples == 0 {
		t.Error("no RTT sample in any interval")
	}
	if conn.Owner.PID != os.Getpid() {
		t.Errorf("owner %+v, want pid %d", conn.Owner, os.Getpid())
	}
	// The netfilter drops are there, in B's namespace, as TCP.
	var nf uint64
	for _, d := range last.Drops {
		if d.Reason == "NETFILTER_DROP" && d.NetnsInode == p.B.Inode() && d.Proto == "tcp" {
			nf += d.Packets
		}
	}
	if nf == 0 {
		t.Error("no NETFILTER_DROP rows for the lossy namespace")
	}
}

// A socket whose receive buffer overflows: the drop row names its process.
func TestDropOwnerThroughPipeline(t *testing.T) {
	pl := openPoller(t)
	p := testnet.NewPair(t, testnet.WithoutIPv6())
	var full *net.UDPConn
	if err := p.B.Do(func() (err error) {
		full, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.B4, 0)))
		if err == nil {
			err = full.SetReadBuffer(4096)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	pl.poll()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := testnet.SendUDP(ctx, p.A.Dial, full.LocalAddr().String(), 100, 1000); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	pl.poll() // the socket is known to Flows once it carried bytes
	s := pl.poll()
	var row *snapshot.Drop
	for i, d := range s.Drops {
		if d.Reason == "SOCKET_RCVBUFF" && d.NetnsInode == p.B.Inode() {
			row = &s.Drops[i]
		}
	}
	if row == nil {
		t.Fatalf("no SOCKET_RCVBUFF row among %d", len(s.Drops))
	}
	t.Logf("drop row %+v", *row)
	if row.PID != os.Getpid() || row.Proto != "udp" || row.Packets == 0 {
		t.Errorf("drop row %+v: want pid %d, udp, packets > 0", *row, os.Getpid())
	}
	// The socket's own row carries them too, next to its datagrams.
	for _, c := range s.Connections {
		if c.Cookie == row.Cookie {
			// The cgroup hook counts a datagram before the socket queue
			// refuses it: rx_packets is what arrived, drops what was lost.
			t.Logf("socket: %d datagrams arrived, %d dropped", c.Total.RxPackets, c.Drops)
			if c.Drops != row.Packets || c.Total.RxPackets != 100 {
				t.Errorf("socket drops %d (row %d), datagrams arrived %d: want drops = row and 100 arrived", c.Drops, row.Packets, c.Total.RxPackets)
			}
			return
		}
	}
	t.Errorf("the dropping socket (cookie %d) is not among the connections", row.Cookie)
}
