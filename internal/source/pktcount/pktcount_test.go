package pktcount

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/netmeter/netmeter/internal/bpfload"
)

// The C and Go sides agree on every map and program name, on the counter
// layout and on the key space; checked through generated names only.
func TestNamesAgree(t *testing.T) {
	spec, err := loadPktcount()
	if err != nil {
		t.Fatal(err)
	}
	var specs pktcountSpecs
	if err := bpfload.CheckNames(spec, &specs); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{pktcountMapPktCounts, pktcountProgCountIngress, pktcountProgCountEgress} {
		if spec.Maps[name] == nil && spec.Programs[name] == nil {
			t.Errorf("generated name %q is not in the object", name)
		}
	}
	m := specs.PktCounts
	if m.Type != ebpf.PerCPUArray {
		t.Errorf("map %s type = %s, want PerCPUArray", m.Name, m.Type)
	}
	if got, want := m.ValueSize, uint32(binary.Size(pktcountCounters{})); got != want {
		t.Errorf("map %s value size = %d, Go mirror = %d", m.Name, got, want)
	}
	if got, want := m.MaxEntries, uint32(pktcountDirectionDIRECTION_MAX); got != want {
		t.Errorf("map %s max_entries = %d, want DIRECTION_MAX = %d", m.Name, got, want)
	}
	for _, p := range []struct {
		spec   *ebpf.ProgramSpec
		attach ebpf.AttachType
	}{
		{specs.CountIngress, ebpf.AttachCGroupInetIngress},
		{specs.CountEgress, ebpf.AttachCGroupInetEgress},
	} {
		if p.spec.Type != ebpf.CGroupSKB || p.spec.AttachType != p.attach {
			t.Errorf("program %s: type %s attach %s, want CGroupSKB %s", p.spec.Name, p.spec.Type, p.spec.AttachType, p.attach)
		}
	}
}

func TestSetMaxEntriesOnPktcount(t *testing.T) {
	spec, err := loadPktcount()
	if err != nil {
		t.Fatal(err)
	}
	var specs pktcountSpecs
	if err := spec.Assign(&specs); err != nil {
		t.Fatal(err)
	}
	if err := bpfload.SetMaxEntries(spec, map[string]uint32{specs.PktCounts.Name: 8}); err != nil {
		t.Fatal(err)
	}
	if got := spec.Maps[pktcountMapPktCounts].MaxEntries; got != 8 {
		t.Errorf("max_entries = %d after SetMaxEntries(8)", got)
	}
}

// ipv4UDP returns an Ethernet frame holding an IPv4/UDP packet with payload
// bytes of payload, as BPF_PROG_RUN wants it, and the packet's IP length.
func ipv4UDP(payload int) (frame []byte, ipLen int) {
	ipLen = 20 + 8 + payload
	frame = make([]byte, 14+ipLen)
	binary.BigEndian.PutUint16(frame[12:], 0x0800) // EtherType IPv4
	ip := frame[14:]
	ip[0] = 0x45 // version 4, IHL 5
	binary.BigEndian.PutUint16(ip[2:], uint16(ipLen))
	ip[8] = 64 // TTL
	ip[9] = 17 // UDP
	copy(ip[12:], []byte{127, 0, 0, 1})
	copy(ip[16:], []byte{127, 0, 0, 1})
	binary.BigEndian.PutUint16(ip[20+4:], uint16(8+payload))
	return frame, ipLen
}

// The objects pass the verifier, return 1 (allow) and count skb->len into
// the right slot, on packets crafted for BPF_PROG_RUN.
func TestProgramRun(t *testing.T) {
	requirePrivileged(t)
	if err := bpfload.Prepare(Requirements); err != nil {
		t.Fatal(err)
	}
	var objs pktcountObjects
	if err := loadPktcountObjects(&objs, nil); err != nil {
		t.Fatal(bpfload.Wrap("load pktcount", err, Requirements.Capabilities...))
	}
	defer objs.Close()
	c := &Counter{objs: objs}

	runs := []struct {
		prog    *ebpf.Program
		payload int
	}{
		{objs.CountEgress, 100}, {objs.CountEgress, 1000}, {objs.CountIngress, 7},
	}
	var want [2]Counts
	for _, r := range runs {
		frame, ipLen := ipv4UDP(r.payload)
		ret, err := r.prog.Run(&ebpf.RunOptions{Data: frame})
		if err != nil {
			t.Fatalf("run %s: %v", r.prog, err)
		}
		if ret != 1 {
			t.Errorf("run %s returned %d, want 1 (allow)", r.prog, ret)
		}
		dir := pktcountDirectionDIRECTION_INGRESS
		if r.prog == objs.CountEgress {
			dir = pktcountDirectionDIRECTION_EGRESS
		}
		want[dir].Packets++
		want[dir].Bytes += uint64(ipLen)
	}
	in, eg, err := c.Read()
	if err != nil {
		t.Fatal(err)
	}
	if in != want[pktcountDirectionDIRECTION_INGRESS] || eg != want[pktcountDirectionDIRECTION_EGRESS] {
		t.Errorf("Read() = ingress %+v egress %+v, want %+v %+v", in, eg,
			want[pktcountDirectionDIRECTION_INGRESS], want[pktcountDirectionDIRECTION_EGRESS])
	}
	t.Logf("ingress %+v egress %+v", in, eg)
}

// pingPongReport is what the udp-pingpong role saw.
type pingPongReport struct {
	Sent, Replies     int
	SentBytes, RecvBy int64
}

const (
	envAddr  = "NETMETER_PKTCOUNT_ADDR"
	envK     = "NETMETER_PKTCOUNT_K"
	envSize  = "NETMETER_PKTCOUNT_SIZE"
	envReply = "NETMETER_PKTCOUNT_REPLY"
)

func init() {
	// udp-pingpong sends K datagrams of SIZE bytes to ADDR, one at a time,
	// waiting for each REPLY-byte answer, so nothing is lost to buffers.
	roles["udp-pingpong"] = func() (any, error) {
		k, _ := strconv.Atoi(os.Getenv(envK))
		size, _ := strconv.Atoi(os.Getenv(envSize))
		replySize, _ := strconv.Atoi(os.Getenv(envReply))
		conn, err := net.Dial("udp4", os.Getenv(envAddr))
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		var rep pingPongReport
		msg := make([]byte, size)
		buf := make([]byte, 65536)
		for range k {
			n, err := conn.Write(msg)
			if err != nil {
				return nil, err
			}
			rep.Sent++
			rep.SentBytes += int64(n)
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err = conn.Read(buf)
			if err != nil {
				return nil, fmt.Errorf("reply %d: %w", rep.Replies+1, err)
			}
			if n != replySize {
				return nil, fmt.Errorf("reply %d has %d bytes, want %d", rep.Replies+1, n, replySize)
			}
			rep.Replies++
			rep.RecvBy += int64(n)
		}
		return rep, nil
	}
}

// attachedIDs lists the programs attached directly to the cgroup dir.
func attachedIDs(t *testing.T, dir *os.File, attach ebpf.AttachType) []ebpf.ProgramID {
	t.Helper()
	res, err := link.QueryPrograms(link.QueryOptions{Target: int(dir.Fd()), Attach: attach})
	if err != nil {
		t.Fatalf("query %s programs: %v", attach, err)
	}
	var ids []ebpf.ProgramID
	for _, p := range res.Programs {
		ids = append(ids, p.ID)
	}
	return ids
}

func programID(t *testing.T, p *ebpf.Program) ebpf.ProgramID {
	t.Helper()
	info, err := p.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, ok := info.ID()
	if !ok {
		t.Fatal("kernel reports no program id")
	}
	return id
}

// Real traffic from a child in a fresh cgroup: exactly K datagrams of S
// bytes out and K replies of R bytes in, counted as IP bytes (+20 IPv4,
// +8 UDP). The receiver outside the cgroup is not counted. Close detaches.
func TestCountsCgroupTraffic(t *testing.T) {
	requirePrivileged(t)
	const (
		k     = 200  // datagrams each way
		size  = 1000 // request payload
		reply = 300  // reply payload (differs, to catch swapped directions)
	)
	cg := newTestCgroup(t)

	ln, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan int, 1)
	go func() { // echo server outside the test cgroup
		buf := make([]byte, 65536)
		answer := make([]byte, reply)
		n := 0
		defer func() { served <- n }()
		for {
			m, from, err := ln.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if m == size {
				n++
			}
			if _, err := ln.WriteToUDP(answer, from); err != nil {
				return
			}
		}
	}()

	c, err := Open(cg.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ingressID, egressID := programID(t, c.objs.CountIngress), programID(t, c.objs.CountEgress)
	if ids := attachedIDs(t, cg.dir, ebpf.AttachCGroupInetEgress); !contains(ids, egressID) {
		t.Fatalf("egress program %d not attached to %s (attached: %v)", egressID, cg.path, ids)
	}
	if ids := attachedIDs(t, cg.dir, ebpf.AttachCGroupInetIngress); !contains(ids, ingressID) {
		t.Fatalf("ingress program %d not attached to %s (attached: %v)", ingressID, cg.path, ids)
	}

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var rep pingPongReport
	child(t, self, "udp-pingpong", []string{
		envAddr + "=" + ln.LocalAddr().String(),
		envK + "=" + strconv.Itoa(k),
		envSize + "=" + strconv.Itoa(size),
		envReply + "=" + strconv.Itoa(reply),
	}, &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.dir.Fd())}, &rep)

	ln.Close()
	if got := <-served; got != k || rep.Sent != k || rep.Replies != k {
		t.Fatalf("ground truth: child sent %d, server got %d, child got %d replies; want %d each", rep.Sent, got, rep.Replies, k)
	}

	in, eg, err := c.Read()
	if err != nil {
		t.Fatal(err)
	}
	wantEg := Counts{Packets: k, Bytes: k * (size + 8 + 20)}
	wantIn := Counts{Packets: k, Bytes: k * (reply + 8 + 20)}
	if eg != wantEg {
		t.Errorf("egress = %+v, want %+v", eg, wantEg)
	}
	if in != wantIn {
		t.Errorf("ingress = %+v, want %+v", in, wantIn)
	}
	t.Logf("k=%d: egress %+v, ingress %+v (payload out %d B, in %d B)", k, eg, in, rep.SentBytes, rep.RecvBy)

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, a := range []ebpf.AttachType{ebpf.AttachCGroupInetIngress, ebpf.AttachCGroupInetEgress} {
		if ids := attachedIDs(t, cg.dir, a); len(ids) != 0 {
			t.Errorf("after Close, %s still has programs %v", a, ids)
		}
	}
	if err := cg.remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cg.path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cgroup %s still exists after removal: %v", cg.path, err)
	}
}

func contains(ids []ebpf.ProgramID, id ebpf.ProgramID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// nobodyReport is what the open-as-nobody role saw.
type nobodyReport struct {
	UID                  int
	OpenErr, LoadErr     string
	OpenIsCap, LoadIsCap bool
	OpenMissing          []string
}

func init() {
	// open-as-nobody calls Open (which checks capabilities first), and also
	// loads the objects directly so the kernel's own EPERM is classified.
	roles["open-as-nobody"] = func() (any, error) {
		rep := nobodyReport{UID: os.Getuid()}
		var capErr *bpfload.CapabilityError
		c, err := Open("")
		if err == nil {
			c.Close()
			return nil, errors.New("Open succeeded without privileges")
		}
		rep.OpenErr = err.Error()
		if errors.As(err, &capErr) {
			rep.OpenIsCap = true
			for _, m := range capErr.Missing {
				rep.OpenMissing = append(rep.OpenMissing, m.String())
			}
		}
		var objs pktcountObjects
		err = bpfload.Wrap("load pktcount", loadPktcountObjects(&objs, nil), Requirements.Capabilities...)
		if err == nil {
			objs.Close()
			return nil, errors.New("load succeeded without privileges")
		}
		rep.LoadErr = err.Error()
		rep.LoadIsCap = errors.As(err, &capErr)
		return rep, nil
	}
}

// Without privileges, Open and a direct load fail with errors that name
// CAP_BPF and CAP_NET_ADMIN and say how to grant them.
func TestOpenUnprivileged(t *testing.T) {
	requirePrivileged(t) // root is needed to drop to nobody
	exe := worldExecutableCopy(t)
	var rep nobodyReport
	child(t, exe, "open-as-nobody", nil, &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: 65534, Gid: 65534, NoSetGroups: true},
	}, &rep)
	if rep.UID != 65534 {
		t.Fatalf("child ran as uid %d", rep.UID)
	}
	t.Logf("Open error: %s", rep.OpenErr)
	t.Logf("load error: %s", rep.LoadErr)
	for _, e := range []struct {
		name  string
		msg   string
		isCap bool
	}{{"Open", rep.OpenErr, rep.OpenIsCap}, {"load", rep.LoadErr, rep.LoadIsCap}} {
		if !e.isCap {
			t.Errorf("%s error is not a *bpfload.CapabilityError: %s", e.name, e.msg)
		}
		for _, want := range []string{"CAP_BPF", "CAP_NET_ADMIN", "run as root", "setcap cap_bpf,cap_net_admin+ep"} {
			if !strings.Contains(e.msg, want) {
				t.Errorf("%s error lacks %q: %s", e.name, want, e.msg)
			}
		}
	}
	if strings.Join(rep.OpenMissing, ",") != "CAP_BPF,CAP_NET_ADMIN" {
		t.Errorf("Open missing = %v, want [CAP_BPF CAP_NET_ADMIN]", rep.OpenMissing)
	}
}
