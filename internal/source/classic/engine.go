package classic

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/netmeter/netmeter/internal/attribution/procfs"
	"github.com/netmeter/netmeter/internal/nsutil"
	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/source/engine"
)

// Kind names this engine in snapshots (snapshot.EngineStats.Kind).
const Kind = "classic"

// Defaults for Options.
const (
	// DefaultSnaplen keeps the IP and transport headers (IPv6 with a few
	// extension headers and TCP with options included).
	DefaultSnaplen = 192
	// DefaultBlocks of blockSize make a 32 MiB ring. A block is handed to
	// the reader when full or after blockTimeout, so the ring holds at
	// least DefaultBlocks × blockTimeout (1 s) of traffic while the reader
	// is not scheduled: many small blocks, not a few large ones (32 × 1 MiB
	// dropped half the packets of a loopback transfer on 2 busy cores).
	DefaultBlocks = 512
	blockSize     = 64 << 10
	frameSize     = 4 << 10
	// blockTimeout bounds how long a packet waits in a block that is not
	// full: the scan it triggers must come while a short connection lives.
	blockTimeout = 2 * time.Millisecond
	pollTimeout  = 100 * time.Millisecond
	// periodicScan is how often /proc/net is read without a new flow.
	periodicScan = 250 * time.Millisecond
	// maxCaptureErrors consecutive read errors (10 ms apart) fail Read.
	maxCaptureErrors = 100
)

// Options configure Open. Zero fields take the defaults.
type Options struct {
	// NetnsPath is the network namespace to watch ("" = the caller's).
	NetnsPath string
	// ProcRoot is where procfs is mounted ("" = /proc).
	ProcRoot string
	// Lookup names a process (procfs.Resolver.Lookup with no start time);
	// nil reads /proc/<pid> every time.
	Lookup func(pid int) (procfs.Info, bool)
	// MaxSockets and MaxUnknown bound the socket table and the table of
	// flows no socket matched yet.
	MaxSockets int
	MaxUnknown int
	// Blocks is the number of 64 KiB blocks of the capture ring.
	Blocks  int
	Snaplen int
}

// Stats are the engine's own counters since Open.
type Stats struct {
	Packets      uint64 // packets taken off the ring
	Drops        uint64 // packets the kernel dropped because the ring was full (PACKET_STATISTICS)
	SocketFull   uint64 // sockets not tracked because the socket table was full
	UnknownFull  uint64 // packets of new flows refused because the unknown-flow table was full
	Scans        uint64 // /proc scans
	ScanErrors   uint64
	LastScanTime time.Duration
}

// Engine is an AF_PACKET capture of one network namespace joined to its
// /proc/net tables.
type Engine struct {
	t       *table
	tp      *afpacket.TPacket
	sc      *scanner
	netns   uint32
	nsPath  string
	kick    chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
	scanMu  sync.Mutex
	packets atomic.Uint64
	scans   atomic.Uint64
	scanErr atomic.Uint64
	lastDur atomic.Int64
	statsMu sync.Mutex
	drops   uint64
	readErr atomic.Pointer[error]
	closeMu sync.Once
}

// Open starts capturing in the namespace opt names.
func Open(opt Options) (*Engine, error) {
	ino, err := nsutil.Inode(opt.NetnsPath)
	if err != nil {
		return nil, err
	}
	if opt.Snaplen <= 0 {
		opt.Snaplen = DefaultSnaplen
	}
	if opt.Blocks <= 0 {
		opt.Blocks = DefaultBlocks
	}
	fs := procfs.NewFS(opt.ProcRoot)
	lookup := opt.Lookup
	if lookup == nil {
		lookup = func(pid int) (procfs.Info, bool) {
			info, err := fs.Process(pid)
			return info, err == nil
		}
	}
	e := &Engine{
		t: newTable(uint32(ino), opt.MaxSockets, opt.MaxUnknown), netns: uint32(ino), nsPath: opt.NetnsPath,
		sc:   &scanner{fs: fs, lookup: lookup},
		kick: make(chan struct{}, 1), done: make(chan struct{}),
	}
	var addrs []netip.Addr
	err = nsutil.Do(opt.NetnsPath, func() error {
		for _, f := range netFiles {
			fh, err := os.Open("/proc/thread-self/net/" + f.name)
			if err != nil {
				if errors.Is(err, os.ErrNotExist) && (f.name == "tcp6" || f.name == "udp6") {
					continue // IPv6 disabled
				}
				return fmt.Errorf("classic engine: %w", err)
			}
			e.sc.files = append(e.sc.files, fh)
		}
		lo, err := net.InterfaceByName("lo")
		if err != nil {
			return fmt.Errorf("classic engine: find lo: %w", err)
		}
		if addrs, err = localAddrs(); err != nil {
			return err
		}
		e.tp, err = openCapture(lo.Index, opt.Snaplen, opt.Blocks)
		return err
	})
	if err != nil {
		e.closeFiles()
		return nil, err
	}
	e.t.setLocal(addrs)
	if err := e.scan(); err != nil {
		e.Close()
		return nil, err
	}
	e.wg.Add(2)
	go e.capture()
	go e.scanLoop()
	return e, nil
}

// filter is the classic BPF program the capture runs in the kernel: it
// keeps IPv4 and IPv6 packets, drops the outgoing copy of each packet on lo
// (the kernel hands a packet socket one copy at transmit and one at
// receive; the receive copy is kept), and truncates to snaplen.
func filter(loIndex, snaplen int) ([]bpf.RawInstruction, error) {
	return bpf.Assemble([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtInterfaceIndex},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(loIndex), SkipTrue: 2},
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.PACKET_OUTGOING, SkipTrue: 3},
		bpf.LoadExtension{Num: bpf.ExtProto},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.ETH_P_IP, SkipTrue: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.ETH_P_IPV6, SkipTrue: 1},
		bpf.RetConstant{Val: 0},
		bpf.RetConstant{Val: uint32(snaplen)},
	})
}

// openCapture opens a TPACKET_V3 ring of SOCK_DGRAM packets (data starts at
// the network header on every link type, and tp_len is the IP length) on
// every interface of the caller's namespace.
func openCapture(loIndex, snaplen, blocks int) (*afpacket.TPacket, error) {
	prog, err := filter(loIndex, snaplen)
	if err != nil {
		return nil, fmt.Errorf("classic engine: assemble filter: %w", err)
	}
	tp, err := afpacket.NewTPacket(
		afpacket.TPacketVersion3, afpacket.SocketDgram,
		afpacket.OptFrameSize(frameSize), afpacket.OptBlockSize(blockSize), afpacket.OptNumBlocks(blocks),
		afpacket.OptBlockTimeout(blockTimeout), afpacket.OptPollTimeout(pollTimeout),
	)
	if err != nil {
		return nil, fmt.Errorf("classic engine: open AF_PACKET ring (needs CAP_NET_RAW): %w", err)
	}
	if err := tp.SetBPF(prog); err != nil {
		tp.Close()
		return nil, fmt.Errorf("classic engine: attach filter: %w", err)
	}
	return tp, nil
}

// localAddrs returns the addresses of the caller's namespace.
func localAddrs() ([]netip.Addr, error) {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("classic engine: list addresses: %w", err)
	}
	var out []netip.Addr
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out, nil
}

func (e *Engine) capture() {
	defer e.wg.Done()
	failed := 0
	for {
		select {
		case <-e.done:
			return
		default:
		}
		data, ci, err := e.tp.ZeroCopyReadPacketData()
		if err != nil {
			if errors.Is(err, afpacket.ErrTimeout) {
				continue
			}
			select {
			case <-e.done:
				return
			default:
			}
			// A transient error (POLLERR) is retried; only a ring that keeps
			// failing fails Read.
			if failed++; failed >= maxCaptureErrors {
				e.readErr.Store(&err)
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		failed = 0
		e.packets.Add(1)
		p, ok := parsePacket(data, ci.Length)
		if ok && e.t.account(&p) {
			select {
			case e.kick <- struct{}{}:
			default:
			}
		}
	}
}

func (e *Engine) scanLoop() {
	defer e.wg.Done()
	tick := time.NewTicker(periodicScan)
	defer tick.Stop()
	for {
		select {
		case <-e.done:
			return
		case <-e.kick:
		case <-tick.C:
		}
		if err := e.scan(); err != nil {
			e.scanErr.Add(1)
		}
	}
}

// scan reads /proc once and applies it to the table.
func (e *Engine) scan() error {
	e.scanMu.Lock()
	defer e.scanMu.Unlock()
	start := time.Now()
	found, err := e.sc.scan(start, e.t.owned)
	if err != nil {
		return err
	}
	e.t.apply(time.Now(), found)
	e.scans.Add(1)
	e.lastDur.Store(int64(time.Since(start)))
	return nil
}

// Read scans /proc and returns every socket's cumulative counters, like
// engine.Engine.Read. Kernel[0] holds the traffic no socket claimed.
func (e *Engine) Read() (engine.Reading, error) {
	var r engine.Reading
	if p := e.readErr.Swap(nil); p != nil {
		return r, fmt.Errorf("classic engine: read packets: %w", *p)
	}
	// Addresses come and go (a veth configured after start, DHCP).
	var addrs []netip.Addr
	if err := nsutil.Do(e.nsPath, func() (err error) { addrs, err = localAddrs(); return err }); err == nil {
		e.t.setLocal(addrs)
	}
	if err := e.scan(); err != nil {
		return r, fmt.Errorf("classic engine: %w", err)
	}
	now := time.Now()
	e.t.expire(now)
	var unattributed snapshot.Traffic
	r.Live, r.Dead, unattributed, r.Overflow, _ = e.t.reading(now)
	r.Kernel = map[uint64]snapshot.Traffic{0: unattributed}
	return r, nil
}

// Stats returns the engine's counters, the ring's drops included.
func (e *Engine) Stats() Stats {
	e.statsMu.Lock()
	if e.tp != nil {
		if _, v3, err := e.tp.SocketStats(); err == nil {
			e.drops = uint64(v3.Drops())
		}
	}
	drops := e.drops
	e.statsMu.Unlock()
	e.t.mu.Lock()
	sf, uf := e.t.sockFull, e.t.unknownFull
	e.t.mu.Unlock()
	return Stats{
		Packets: e.packets.Load(), Drops: drops, SocketFull: sf, UnknownFull: uf,
		Scans: e.scans.Load(), ScanErrors: e.scanErr.Load(), LastScanTime: time.Duration(e.lastDur.Load()),
	}
}

// Describe fills in what a snapshot says about this engine.
func (e *Engine) Describe(s *snapshot.EngineStats) {
	st := e.Stats()
	s.Kind = Kind
	s.Approximate = true
	s.CaptureDropped = st.Drops
	s.MapFull += st.SocketFull + st.UnknownFull
}

// Close stops the capture and the scanner. Safe more than once.
func (e *Engine) Close() error {
	e.closeMu.Do(func() {
		close(e.done)
		e.wg.Wait()
		if e.tp != nil {
			e.tp.Close()
		}
		e.closeFiles()
	})
	return nil
}

func (e *Engine) closeFiles() {
	for _, f := range e.sc.files {
		f.Close()
	}
	e.sc.files = nil
}
