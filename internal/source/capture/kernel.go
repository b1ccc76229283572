package capture

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/netmeter/netmeter/internal/attribution/procfs"
	"github.com/netmeter/netmeter/internal/bpfload"
)

// Requirements are what the kernel-side (per-socket) capture needs.
var Requirements = bpfload.Requirements{
	Name:         "capture",
	Capabilities: []bpfload.Capability{bpfload.CapBPF, bpfload.CapNetAdmin},
	BTF:          false,
	ProgramTypes: []ebpf.ProgramType{ebpf.CGroupSKB, ebpf.CGroupSock, ebpf.CGroupSockAddr, ebpf.SockOps},
	MapTypes:     []ebpf.MapType{ebpf.RingBuf, ebpf.LRUHash},
}

// MaxSnaplen is the most bytes of one packet the kernel-side capture
// copies (bpf/capture.c's largest record).
const MaxSnaplen = 65536

// Selection says whose packets the kernel-side capture keeps.
type Selection struct {
	// Pids are processes (thread group ids) whose sockets are selected:
	// those open at start and those they create later.
	Pids []int
	// Comm also selects sockets created later by any process of that name
	// (the kernel's 15-character comm).
	Comm string
	// Cgroup, when set, is a cgroup2 directory: the programs attach there
	// and keep every packet of its sockets. Empty: the cgroup2 root, and
	// only selected sockets (or every socket when All is set).
	Cgroup string
	// All keeps the packets of every socket under the attach cgroup.
	All bool
	// Ifindex keeps only packets through this interface (0: any).
	Ifindex int
	// Snaplen bounds the bytes copied per packet (0 or more than
	// MaxSnaplen: MaxSnaplen).
	Snaplen int
	// RingSize is the ring buffer's size in bytes (0: 8 MiB); a power of two.
	RingSize int
}

// Kernel is the kernel-side capture: the programs of bpf/capture.c loaded,
// seeded and attached.
type Kernel struct {
	objs    captureObjects
	links   []link.Link
	rd      *ringbuf.Reader
	rec     ringbuf.Record
	bootOff int64 // CLOCK_REALTIME - CLOCK_MONOTONIC, ns
	Seeded  int   // sockets selected from the targets' open file descriptors
}

// OpenKernel loads and attaches the kernel-side capture for sel.
func OpenKernel(sel Selection) (*Kernel, error) {
	path, err := bpfload.ResolveCgroup(sel.Cgroup)
	if err != nil {
		return nil, fmt.Errorf("open capture: %w", err)
	}
	if err := bpfload.Prepare(Requirements); err != nil {
		return nil, err
	}
	spec, err := loadCapture()
	if err != nil {
		return nil, fmt.Errorf("open capture: %w", err)
	}
	if sel.RingSize > 0 {
		if err := bpfload.SetMaxEntries(spec, map[string]uint32{captureMapCapEvents: uint32(sel.RingSize)}); err != nil {
			return nil, err
		}
	}
	k := &Kernel{}
	if err := spec.LoadAndAssign(&k.objs, nil); err != nil {
		return nil, bpfload.Wrap("load capture", err, Requirements.Capabilities...)
	}
	ok := false
	defer func() {
		if !ok {
			k.Close()
		}
	}()
	snap := sel.Snaplen
	if snap <= 0 || snap > MaxSnaplen {
		snap = MaxSnaplen
	}
	cfg := captureCapConfig{Snaplen: uint32(snap), Ifindex: uint32(sel.Ifindex), Enabled: 1}
	if sel.Cgroup != "" || sel.All {
		cfg.SelectAll = 1
	}
	if sel.Comm != "" {
		cfg.MatchComm = 1
		copyComm(&cfg.Comm, sel.Comm)
	}
	for _, pid := range sel.Pids {
		if err := k.objs.CapPids.Put(uint32(pid), uint8(1)); err != nil {
			return nil, fmt.Errorf("select pid %d: %w", pid, err)
		}
	}
	// Attach first (with the config still disabled), then seed, then
	// enable: a socket created in between is caught by sock_create.
	for _, a := range []struct {
		prog   *ebpf.Program
		attach ebpf.AttachType
	}{
		{k.objs.CaptureSockCreate, ebpf.AttachCGroupInetSockCreate},
		{k.objs.CaptureSockops, ebpf.AttachCGroupSockOps},
		{k.objs.CaptureSendmsg4, ebpf.AttachCGroupUDP4Sendmsg},
		{k.objs.CaptureSendmsg6, ebpf.AttachCGroupUDP6Sendmsg},
		{k.objs.CaptureConnect4, ebpf.AttachCGroupInet4Connect},
		{k.objs.CaptureConnect6, ebpf.AttachCGroupInet6Connect},
		{k.objs.CaptureIngress, ebpf.AttachCGroupInetIngress},
		{k.objs.CaptureEgress, ebpf.AttachCGroupInetEgress},
	} {
		l, err := link.AttachCgroup(link.CgroupOptions{Path: path, Attach: a.attach, Program: a.prog})
		if err != nil {
			return nil, bpfload.Wrap(fmt.Sprintf("attach capture %s to %s", a.attach, path), err, Requirements.Capabilities...)
		}
		k.links = append(k.links, l)
	}
	// Turn sock_create on before the scan so no socket falls between.
	if err := k.objs.CapConfigMap.Put(uint32(0), cfg); err != nil {
		return nil, fmt.Errorf("configure capture: %w", err)
	}
	for _, pid := range sel.Pids {
		n, err := k.seed(pid)
		if err != nil {
			return nil, err
		}
		k.Seeded += n
	}
	if k.rd, err = ringbuf.NewReader(k.objs.CapEvents); err != nil {
		return nil, fmt.Errorf("open capture ring: %w", err)
	}
	var mono, real unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono)
	_ = unix.ClockGettime(unix.CLOCK_REALTIME, &real)
	k.bootOff = real.Nano() - mono.Nano()
	ok = true
	return k, nil
}

func copyComm(dst *[16]int8, s string) {
	for i := 0; i < len(s) && i < len(dst)-1; i++ {
		dst[i] = int8(s[i])
	}
}

// seed selects the sockets pid has open now.
func (k *Kernel) seed(pid int) (int, error) {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return 0, fmt.Errorf("no such process %d: %w", pid, err)
	}
	var o captureOwner
	o.Tgid = uint32(pid)
	copyComm(&o.Comm, strings.TrimSpace(string(comm)))
	cookies, err := socketCookies(pid)
	if err != nil {
		return 0, err
	}
	for _, c := range cookies {
		if err := k.objs.CapSelected.Put(c, o); err != nil {
			return 0, fmt.Errorf("select socket of pid %d: %w", pid, err)
		}
	}
	return len(cookies), nil
}

// Stats are the kernel-side capture's counters since it opened.
type Stats struct {
	Captured uint64 // records written to the ring
	RingFull uint64 // packets lost because the ring was full
	// SelectFull counts sockets that could not be selected (map full).
	SelectFull uint64
}

// Stats reads the counters, summed over CPUs.
func (k *Kernel) Stats() (Stats, error) {
	read := func(s captureCapStat) (uint64, error) {
		var per []uint64
		if err := k.objs.CapStats.Lookup(uint32(s), &per); err != nil {
			return 0, fmt.Errorf("read capture stats: %w", err)
		}
		var sum uint64
		for _, v := range per {
			sum += v
		}
		return sum, nil
	}
	var st Stats
	var err error
	if st.Captured, err = read(captureCapStatCAP_STAT_CAPTURED); err != nil {
		return st, err
	}
	if st.RingFull, err = read(captureCapStatCAP_STAT_RING_FULL); err != nil {
		return st, err
	}
	st.SelectFull, err = read(captureCapStatCAP_STAT_SELECT_FULL)
	return st, err
}

// Next returns the next packet. The packet's Data is valid until the next
// call. It returns os.ErrDeadlineExceeded when ctx has no packet before the
// poll interval ends, and ringbuf.ErrClosed after Close.
func (k *Kernel) Next(deadline time.Time) (Packet, error) {
	k.rd.SetDeadline(deadline)
	if err := k.rd.ReadInto(&k.rec); err != nil {
		return Packet{}, err
	}
	var p Packet
	if err := decodeRecord(k.rec.RawSample, &p); err != nil {
		return Packet{}, err
	}
	p.Time = time.Unix(0, int64(p.mono)+k.bootOff)
	return p, nil
}

// Close detaches the programs and frees the maps.
func (k *Kernel) Close() error {
	var errs []error
	if k.rd != nil {
		errs = append(errs, k.rd.Close())
	}
	for _, l := range k.links {
		errs = append(errs, l.Close())
	}
	errs = append(errs, k.objs.Close())
	return errors.Join(errs...)
}

// recordSize is the fixed part of a ring record.
const recordSize = int(unsafe.Sizeof(captureCapRecord{}))

// decodeRecord decodes one ring record (header and packet bytes) into p;
// p.Data aliases b.
func decodeRecord(b []byte, p *Packet) error {
	var r captureCapRecord
	if len(b) < recordSize {
		return fmt.Errorf("capture record of %d bytes: shorter than its %d-byte header", len(b), recordSize)
	}
	// The generated mirror has the C layout (structs.HostLayout, no
	// implicit padding: -Wpadded), so the header's bytes are its memory;
	// copying avoids encoding/binary's reflection (40 % of the per-packet
	// time) and any alignment assumption.
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&r)), recordSize), b)
	data := b[recordSize:]
	if uint64(r.CapLen) > uint64(len(data)) {
		return fmt.Errorf("capture record: %d packet bytes announced, %d present", r.CapLen, len(data))
	}
	*p = Packet{
		Data:    data[:r.CapLen],
		OrigLen: int(r.OrigLen),
		Ifindex: int(r.Ifindex),
		Cookie:  r.Cookie,
		Pid:     int(r.Tgid),
		Comm:    commString(r.Comm),
		mono:    r.TsNs,
	}
	switch captureCapDirection(r.Direction) {
	case captureCapDirectionCAP_DIR_INGRESS:
		p.Dir = DirIn
	case captureCapDirectionCAP_DIR_EGRESS:
		p.Dir = DirOut
	}
	return nil
}

func commString(c [16]int8) string {
	var b [16]byte
	n := 0
	for ; n < len(c) && c[n] != 0; n++ {
		b[n] = byte(c[n])
	}
	return string(b[:n])
}

// socketCookies returns the cookies of the TCP and UDP sockets pid has
// open, found by inode (/proc/PID/fd) in sock_diag of pid's namespace.
func socketCookies(pid int) ([]uint64, error) {
	inodes, err := procfs.NewFS(procfs.DefaultRoot).SocketInodesOf(pid)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no such process %d", pid)
	} else if err != nil {
		return nil, fmt.Errorf("read fds of pid %d: %w", pid, err)
	}
	if len(inodes) == 0 {
		return nil, nil
	}
	byInode, err := diagCookies(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return nil, fmt.Errorf("list sockets of pid %d: %w", pid, err)
	}
	var out []uint64
	for _, ino := range inodes {
		if c, ok := byInode[uint32(ino)]; ok {
			out = append(out, c)
		}
	}
	return out, nil
}
