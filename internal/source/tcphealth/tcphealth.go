// Package tcphealth is the health source: bpf/health.c loaded and attached.
// It reads, per TCP socket (by socket cookie, the key the engine uses too),
// the kernel's own RTT, window, segment and retransmission state plus what
// the health hooks add (RTT samples per interval, retransmissions split
// into fast and after-timeout, resets, handshake time), and every packet
// the kernel dropped with its drop reason. Nothing it attaches runs per data
// packet; the RTT sampling (one callback per round trip and connection) can
// be turned off (Options.NoRTTSamples).
package tcphealth

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/netmeter/netmeter/internal/bpfload"
	"github.com/netmeter/netmeter/internal/nsutil"
	"github.com/netmeter/netmeter/internal/snapshot"
)

// Requirements are what the health hooks need from the kernel.
var Requirements = bpfload.Requirements{
	Name:         "tcp health",
	Capabilities: []bpfload.Capability{bpfload.CapBPF, bpfload.CapNetAdmin, bpfload.CapPerfmon},
	BTF:          true,
	ProgramTypes: []ebpf.ProgramType{ebpf.SockOps},
	MapTypes:     []ebpf.MapType{ebpf.SkStorage, ebpf.RingBuf, ebpf.Hash, ebpf.PerCPUArray},
}

// Defaults for Options.
const (
	DefaultDropEntries    = 16384
	DefaultMaxPendingDead = 1 << 18
)

// Options configure Open.
type Options struct {
	// Cgroup is the cgroup2 directory the sock_ops program is attached to
	// ("" = the cgroup2 root: every socket of the host).
	Cgroup string
	// NoRTTSamples turns off the RTT callback (once per round trip and
	// connection): smoothed and minimum
	// RTT are still read from the kernel, but no per-interval min/max/mean.
	NoRTTSamples bool
	// DropEntries bounds the drop table (default DefaultDropEntries);
	// beyond it drops are counted by reason only.
	DropEntries    uint32
	MaxPendingDead int
}

// Conn is one TCP socket's health.
type Conn struct {
	Cookie uint64
	Netns  uint32
	State  uint8
	Dead   bool
	// Adopted is set for a connection that was open before the hooks:
	// its lifetime counters include events netmeter did not see happen.
	Adopted bool
	// Stats holds the gauges; its Total the lifetime counters (Delta is
	// left to the caller, which knows the previous reading).
	Stats snapshot.TCPStats
	// WindowValid says Stats.Interval covers the samples since the last
	// Read (false: no sample since, and Interval is empty).
	WindowValid bool
}

// DropKey is where and why packets were dropped.
type DropKey struct {
	Reason  uint32
	Ifindex uint32
	Netns   uint32
	Family  int
	Proto   uint8
	Cookie  uint64
}

// DropCount is packets and bytes dropped, since Open.
type DropCount struct {
	Packets, Bytes uint64
}

// Stats say how complete the view is.
type Stats struct {
	RingFull       uint64 // final records lost (their last interval is missing)
	DropsFull      uint64 // drops counted without socket and interface (table full)
	DropsLost      uint64 // drops not even counted by reason
	ResetsNoSocket uint64 // RSTs sent for no full socket (closed port, timewait)
	PendingDropped uint64
}

// Reading is one Read.
type Reading struct {
	Conns []Conn // live, then the dead since the last Read
	Drops map[DropKey]DropCount
	Stats Stats
}

// Source is bpf/health.c loaded and attached.
type Source struct {
	objs     healthObjects
	links    []link.Link
	iter     *link.Iter
	adopter  *link.Iter
	ring     *ringbuf.Reader
	epoch    atomic.Uint32 // the RTT window being filled; Read advances it
	reasons  map[uint32]string
	maxDead  int
	mu       sync.Mutex
	dead     []Conn
	dropped  uint64
	ringErr  error
	ringDone chan struct{}
}

// Open loads the health hooks and attaches them.
func Open(opt Options) (*Source, error) {
	if opt.DropEntries == 0 {
		opt.DropEntries = DefaultDropEntries
	}
	if opt.MaxPendingDead == 0 {
		opt.MaxPendingDead = DefaultMaxPendingDead
	}
	cg, err := bpfload.ResolveCgroup(opt.Cgroup)
	if err != nil {
		return nil, fmt.Errorf("open tcp health: %w", err)
	}
	if err := bpfload.Prepare(Requirements); err != nil {
		return nil, err
	}
	spec, err := loadHealth()
	if err != nil {
		return nil, fmt.Errorf("open tcp health: %w", err)
	}
	if err := bpfload.SetMaxEntries(spec, map[string]uint32{healthMapDropCounts: opt.DropEntries}); err != nil {
		return nil, fmt.Errorf("open tcp health: %w", err)
	}
	if opt.NoRTTSamples {
		if err := spec.Variables["rtt_samples"].Set(uint8(0)); err != nil {
			return nil, fmt.Errorf("open tcp health: %w", err)
		}
	}
	s := &Source{maxDead: opt.MaxPendingDead, ringDone: make(chan struct{})}
	if err := spec.LoadAndAssign(&s.objs, nil); err != nil {
		return nil, bpfload.Wrap("load tcp health", err, Requirements.Capabilities...)
	}
	s.reasons = dropReasons()
	if err := s.attach(cg); err != nil {
		s.Close()
		return nil, err
	}
	r, err := ringbuf.NewReader(s.objs.HealthDeaths)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open tcp health ring buffer: %w", err)
	}
	s.ring = r
	go s.readDeaths()
	if err := s.Adopt(""); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Source) attach(cg string) error {
	l, err := link.AttachCgroup(link.CgroupOptions{Path: cg, Attach: ebpf.AttachCGroupSockOps, Program: s.objs.TcpOps})
	if err != nil {
		return bpfload.Wrap("attach tcp health sock_ops to "+cg, err, Requirements.Capabilities...)
	}
	s.links = append(s.links, l)
	for _, p := range []*ebpf.Program{s.objs.Retransmit, s.objs.SendReset, s.objs.ReceiveReset, s.objs.Drop, s.objs.HealthDestroy} {
		l, err := link.AttachTracing(link.TracingOptions{Program: p})
		if err != nil {
			return bpfload.Wrap(fmt.Sprintf("attach tcp health %s", p), err, Requirements.Capabilities...)
		}
		s.links = append(s.links, l)
	}
	it, err := link.AttachIter(link.IterOptions{Program: s.objs.DumpHealth, Map: s.objs.HealthStore})
	if err != nil {
		return bpfload.Wrap("attach tcp health iterator", err, Requirements.Capabilities...)
	}
	s.iter = it
	s.links = append(s.links, it)
	ad, err := link.AttachIter(link.IterOptions{Program: s.objs.AdoptHealth})
	if err != nil {
		return bpfload.Wrap("attach tcp health adoption iterator", err, Requirements.Capabilities...)
	}
	s.adopter = ad
	s.links = append(s.links, ad)
	return nil
}

// Adopt gives the TCP sockets of the namespace at nsPath ("" = the caller's)
// that are older than the hooks a health record, so they are listed with the
// kernel's numbers (no RTT samples: their callbacks were never enabled).
func (s *Source) Adopt(nsPath string) error {
	return nsutil.Do(nsPath, func() error {
		rc, err := s.adopter.Open()
		if err != nil {
			return fmt.Errorf("adopt tcp sockets: %w", err)
		}
		defer rc.Close()
		if _, err := io.Copy(io.Discard, rc); err != nil {
			return fmt.Errorf("adopt tcp sockets: %w", err)
		}
		return nil
	})
}

func (s *Source) readDeaths() {
	defer close(s.ringDone)
	var rec ringbuf.Record
	for {
		if err := s.ring.ReadInto(&rec); err != nil {
			if !errors.Is(err, os.ErrClosed) {
				s.mu.Lock()
				s.ringErr = err
				s.mu.Unlock()
			}
			return
		}
		c, err := s.decodeOne(rec.RawSample)
		s.mu.Lock()
		switch {
		case err != nil:
			s.ringErr = err
		case len(s.dead) >= s.maxDead:
			s.dropped++
		default:
			s.dead = append(s.dead, c)
		}
		s.mu.Unlock()
	}
}

var recordSize = binary.Size(healthHealthRecord{})

func (s *Source) decodeOne(b []byte) (Conn, error) {
	var r healthHealthRecord
	if len(b) < recordSize {
		return Conn{}, fmt.Errorf("health record of %d bytes, want %d", len(b), recordSize)
	}
	if _, err := binary.Decode(b[:recordSize], binary.LittleEndian, &r); err != nil {
		return Conn{}, fmt.Errorf("decode health record: %w", err)
	}
	return convert(&r, s.epoch.Load()), nil
}

// caStates names enum tcp_ca_state.
var caStates = [...]string{"open", "disorder", "cwr", "recovery", "loss"}

func convert(r *healthHealthRecord, epoch uint32) Conn {
	h := &r.H
	c := Conn{Cookie: r.Cookie, Netns: r.Netns, State: r.State, Dead: r.Dead != 0,
		Adopted: h.Flags&uint32(healthHealthFlagHFLAG_ADOPTED) != 0}
	st := &c.Stats
	st.SRTT, st.RTTVar, st.MinRTT = r.SrttUs, r.RttvarUs, r.MinRttUs
	if r.MinRttUs == ^uint32(0) {
		st.MinRTT = 0 // no sample yet
	}
	st.Cwnd, st.Ssthresh, st.SndWnd, st.RcvWnd = r.Cwnd, r.Ssthresh, r.SndWnd, r.RcvWnd
	st.RcvQueue, st.SndQueue = r.RcvQueue, r.SndQueue
	if int(r.CaState) < len(caStates) {
		st.CAState = caStates[r.CaState]
	}
	st.Lost, st.Retrans = r.LostOut, r.RetransOut
	st.Setup, st.StateChanges = h.SetupUs, h.StateChanges
	st.Total = snapshot.TCPCounters{
		SegsOut: uint64(r.SegsOut), SegsIn: uint64(r.SegsIn),
		DataSegsOut: uint64(r.DataSegsOut), DataSegsIn: uint64(r.DataSegsIn),
		RetransSegs: uint64(r.TotalRetrans), FastRetrans: h.FastRetrans, RTORetrans: h.RtoRetrans,
		RTOs: uint64(r.TotalRto), ResetsSent: uint64(h.ResetsSent), ResetsReceived: uint64(h.ResetsReceived),
		RTTSamples: h.RttSamples, RTTSum: h.RttSumUs,
	}
	if h.WinSamples > 0 && h.Epoch == epoch {
		c.WindowValid = true
		st.Interval = snapshot.RTTWindow{Samples: h.WinSamples, Min: h.WinMinUs, Max: h.WinMaxUs,
			Mean: uint32(h.WinSumUs / uint64(h.WinSamples))}
	}
	return c
}

// Read returns every live TCP socket's health, the final records since the
// last Read, and the drop table. It starts a new RTT window.
func (s *Source) Read() (Reading, error) {
	var out Reading
	rc, err := s.iter.Open()
	if err != nil {
		return out, fmt.Errorf("run tcp health iterator: %w", err)
	}
	buf, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return out, fmt.Errorf("read tcp health iterator: %w", err)
	}
	if len(buf)%recordSize != 0 {
		return out, fmt.Errorf("tcp health dump of %d bytes is not a multiple of %d", len(buf), recordSize)
	}
	for off := 0; off < len(buf); off += recordSize {
		c, err := s.decodeOne(buf[off : off+recordSize])
		if err != nil {
			return out, err
		}
		out.Conns = append(out.Conns, c)
	}
	s.mu.Lock()
	out.Conns = append(out.Conns, s.dead...)
	s.dead = nil
	out.Stats.PendingDropped = s.dropped
	ringErr := s.ringErr
	s.mu.Unlock()
	if ringErr != nil {
		return out, fmt.Errorf("read tcp health deaths: %w", ringErr)
	}
	// Samples from now on belong to the next window.
	if err := s.objs.ReadEpoch.Put(uint32(0), s.epoch.Add(1)); err != nil {
		return out, fmt.Errorf("advance rtt window: %w", err)
	}
	if out.Drops, err = s.readDrops(); err != nil {
		return out, err
	}
	if err := s.readStats(&out.Stats); err != nil {
		return out, err
	}
	return out, nil
}

func (s *Source) readDrops() (map[DropKey]DropCount, error) {
	out := map[DropKey]DropCount{}
	var k healthDropKey
	var v healthDropCount
	it := s.objs.DropCounts.Iterate()
	for it.Next(&k, &v) {
		out[DropKey{Reason: k.Reason, Ifindex: k.Ifindex, Netns: k.Netns, Family: int(k.Family), Proto: k.Proto, Cookie: k.Cookie}] = DropCount{Packets: v.Packets, Bytes: v.Bytes}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read drop table: %w", err)
	}
	return out, nil
}

func (s *Source) readStats(st *Stats) error {
	for key, dst := range map[uint32]*uint64{
		uint32(healthHealthStatHSTAT_RING_FULL):   &st.RingFull,
		uint32(healthHealthStatHSTAT_DROPS_FULL):  &st.DropsFull,
		uint32(healthHealthStatHSTAT_DROPS_LOST):  &st.DropsLost,
		uint32(healthHealthStatHSTAT_RST_NO_SOCK): &st.ResetsNoSocket,
	} {
		var per []uint64
		if err := s.objs.HealthStats.Lookup(key, &per); err != nil {
			return fmt.Errorf("read tcp health stats: %w", err)
		}
		for _, v := range per {
			*dst += v
		}
	}
	return nil
}

// ReasonName is the kernel's name of a drop reason without its
// SKB_DROP_REASON_ prefix ("NETFILTER_DROP"), read from the running kernel's
// BTF; "REASON_<n>" when the kernel does not say.
func (s *Source) ReasonName(code uint32) string {
	if n, ok := s.reasons[code]; ok {
		return n
	}
	return fmt.Sprintf("REASON_%d", code)
}

// dropReasons reads enum skb_drop_reason from the kernel's BTF.
func dropReasons() map[uint32]string {
	out := map[uint32]string{}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return out
	}
	var e *btf.Enum
	if err := spec.TypeByName("skb_drop_reason", &e); err != nil {
		return out
	}
	return reasonNames(e)
}

func reasonNames(e *btf.Enum) map[uint32]string {
	out := make(map[uint32]string, len(e.Values))
	for _, v := range e.Values {
		name := v.Name
		const prefix = "SKB_DROP_REASON_"
		if len(name) > len(prefix) && name[:len(prefix)] == prefix {
			name = name[len(prefix):]
		} else if len(name) > 4 && name[:4] == "SKB_" {
			name = name[4:]
		}
		out[uint32(v.Value)] = name
	}
	return out
}

// Close detaches everything.
func (s *Source) Close() error {
	if s.ring != nil {
		s.ring.Close()
		<-s.ringDone
		s.ring = nil
	}
	var first error
	for i := len(s.links) - 1; i >= 0; i-- {
		if err := s.links[i].Close(); err != nil && first == nil {
			first = err
		}
	}
	s.links = nil
	if err := s.objs.Close(); err != nil && first == nil {
		first = err
	}
	return first
}
