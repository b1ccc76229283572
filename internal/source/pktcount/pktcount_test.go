package pktcount

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
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
	"github.com/netmeter/netmeter/internal/testnet"
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
	testnet.RequirePrivileged(t)
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

const rolePingPong = "pktcount-udp-pingpong"

func init() {
	// Sends -count datagrams of -size bytes to -addr one at a time, waiting
	// for each -reply-byte answer, so nothing is lost to socket buffers.
	// Result: datagrams and payload bytes sent; it fails on a missing reply.
	testnet.RegisterRole(rolePingPong, func(ctx context.Context, args []string, rep *testnet.Reporter) error {
		fs := flag.NewFlagSet(rolePingPong, flag.ContinueOnError)
		addr := fs.String("addr", "", "echo server host:port")
		count := fs.Int("count", 1, "datagrams to send")
		size := fs.Int("size", 64, "payload bytes per datagram")
		reply := fs.Int("reply", 64, "payload bytes per expected reply")
		if err := fs.Parse(args); err != nil {
			return err
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "udp4", *addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		rep.Ready("")
		res := testnet.Result{Proto: "udp", Local: conn.LocalAddr().String(), Remote: *addr}
		msg, buf := make([]byte, *size), make([]byte, 65536)
		for i := range *count {
			n, err := conn.Write(msg)
			if err != nil {
				return err
			}
			res.Datagrams++
			res.Bytes += int64(n)
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err = conn.Read(buf); err != nil {
				return fmt.Errorf("reply %d: %w", i+1, err)
			}
			if n != *reply {
				return fmt.Errorf("reply %d has %d bytes, want %d", i+1, n, *reply)
			}
		}
		rep.Result(res)
		return nil
	})
}

// attachedIDs lists the programs attached directly to the cgroup dir.
func attachedIDs(t *testing.T, cgroupFD int, attach ebpf.AttachType) []ebpf.ProgramID {
	t.Helper()
	res, err := link.QueryPrograms(link.QueryOptions{Target: cgroupFD, Attach: attach})
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
	testnet.RequirePrivileged(t)
	const (
		k     = 200  // datagrams each way
		size  = 1000 // request payload
		reply = 300  // reply payload (differs, to catch swapped directions)
	)
	var cgPath string
	t.Cleanup(func() { // registered first, so it runs after the cgroup's removal
		if _, err := os.Stat(cgPath); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("test cgroup %s not removed: %v", cgPath, err)
		}
	})
	cg := testnet.NewCgroup(t)
	cgPath = cg.Path

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

	c, err := Open(cg.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ingressID, egressID := programID(t, c.objs.CountIngress), programID(t, c.objs.CountEgress)
	if ids := attachedIDs(t, cg.FD(), ebpf.AttachCGroupInetEgress); !contains(ids, egressID) {
		t.Fatalf("egress program %d not attached to %s (attached: %v)", egressID, cg.Path, ids)
	}
	if ids := attachedIDs(t, cg.FD(), ebpf.AttachCGroupInetIngress); !contains(ids, ingressID) {
		t.Fatalf("ingress program %d not attached to %s (attached: %v)", ingressID, cg.Path, ids)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	sender := testnet.StartChild(t, testnet.Command(t, nil, cg, rolePingPong,
		"-addr", ln.LocalAddr().String(), "-count", strconv.Itoa(k),
		"-size", strconv.Itoa(size), "-reply", strconv.Itoa(reply)))
	ready, err := sender.Ready(ctx)
	if err != nil {
		t.Fatalf("sender: %v", err)
	}
	if ready.Cgroup != cg.Rel() {
		t.Fatalf("sender runs in cgroup %q, want %q", ready.Cgroup, cg.Rel())
	}
	res, err := sender.Wait(ctx)
	if err != nil {
		t.Fatalf("sender in cgroup: %v", err)
	}
	ln.Close()
	if got := <-served; got != k || res.Datagrams != k || res.Bytes != k*size {
		t.Fatalf("ground truth: child sent %d datagrams (%d B), server got %d; want %d of %d B",
			res.Datagrams, res.Bytes, got, k, size)
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
	t.Logf("k=%d: egress %+v, ingress %+v (payload out %d B, in %d B)", k, eg, in, res.Bytes, k*reply)

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, a := range []ebpf.AttachType{ebpf.AttachCGroupInetIngress, ebpf.AttachCGroupInetEgress} {
		if ids := attachedIDs(t, cg.FD(), a); len(ids) != 0 {
			t.Errorf("after Close, %s still has programs %v", a, ids)
		}
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

const roleNobody = "pktcount-open-as-nobody"

func init() {
	// Calls Open (which checks capabilities first), and also loads the
	// objects directly so the kernel's own EPERM is classified; prints a
	// nobodyReport as the last line of stdout.
	testnet.RegisterRole(roleNobody, func(context.Context, []string, *testnet.Reporter) error {
		rep := nobodyReport{UID: os.Getuid()}
		var capErr *bpfload.CapabilityError
		c, err := Open("")
		if err == nil {
			c.Close()
			return errors.New("Open succeeded without privileges")
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
			return errors.New("load succeeded without privileges")
		}
		rep.LoadErr = err.Error()
		rep.LoadIsCap = errors.As(err, &capErr)
		return json.NewEncoder(os.Stdout).Encode(rep)
	})
}

// Without privileges, Open and a direct load fail with errors that name
// CAP_BPF and CAP_NET_ADMIN and say how to grant them.
func TestOpenUnprivileged(t *testing.T) {
	testnet.RequirePrivileged(t) // root is needed to drop to nobody
	cmd := testnet.Command(t, nil, nil, roleNobody)
	cmd.Path = worldExecutableCopy(t)
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 65534, Gid: 65534, NoSetGroups: true}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child as nobody: %v\nstdout: %s", err, out)
	}
	var rep nobodyReport
	lastJSONLine(t, out, &rep)
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
