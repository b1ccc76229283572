//go:build linux

package pcapfilter

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/netmeter/netmeter/internal/testnet"
)

// sockFprog converts prog for setsockopt.
func sockFprog(prog []bpf.RawInstruction) *unix.SockFprog {
	f := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		f[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return &unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]}
}

// The kernel's own checks (bpf_check_classic) accept every program: the
// table's and random expressions', on every link type. Needs no privilege:
// any socket takes a classic filter.
func TestKernelAcceptsPrograms(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	r := rand.New(rand.NewPCG(4096, 1))
	exprs := append(equivalenceExprs[:len(equivalenceExprs):len(equivalenceExprs)], longPortExpr(150))
	for range 300 {
		exprs = append(exprs, randomExpr(r, 4))
	}
	attached := 0
	for _, lt := range linkTypes {
		for _, e := range exprs {
			prog, err := Compile(e, lt, 0)
			if err != nil {
				continue // "rejects all packets" on raw IP, for one
			}
			if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, sockFprog(prog)); err != nil {
				t.Errorf("%q on %s (%d instructions): the kernel refuses it: %v\n%s", e, lt, len(prog), err, disasm(prog))
				continue
			}
			attached++
		}
	}
	t.Logf("the kernel accepted all %d programs", attached)
}

// The kernel decides as the VM does: frames sent on lo in a fresh namespace
// reach an AF_PACKET socket with our Ethernet program attached exactly when
// the VM accepts them, and a SOCK_DGRAM one (which sees the packet from the
// network header) with our raw-IP program.
func TestKernelDecidesAsTheVM(t *testing.T) {
	ns := testnet.NewNetns(t)
	lo, err := ns.LinkIndex("lo")
	if err != nil {
		t.Fatal(err)
	}
	ethAll := int(htons(unix.ETH_P_ALL))
	var rawRx, dgramRx, tx int
	err = ns.Do(func() error {
		var err error
		if rawRx, err = packetSocket(unix.SOCK_RAW, ethAll, lo); err != nil {
			return err
		}
		if dgramRx, err = packetSocket(unix.SOCK_DGRAM, ethAll, lo); err != nil {
			return err
		}
		tx, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		return err
	})
	for _, fd := range []int{rawRx, dgramRx, tx} {
		if fd > 0 {
			t.Cleanup(func() { unix.Close(fd) })
		}
	}
	if err != nil {
		t.Fatal(err)
	}

	// Frames the kernel sends as they are: at least an Ethernet header, no
	// 802.1Q tag (the receive path moves it into metadata).
	var frames []corpusPacket
	for _, p := range corpus(LinkTypeEthernet) {
		if len(p.data) < 14 || binary.BigEndian.Uint16(p.data[12:]) == 0x8100 {
			continue
		}
		frames = append(frames, p)
	}
	decisions := 0
	for _, e := range equivalenceExprs {
		eth, err := Compile(e, LinkTypeEthernet, 0)
		if err != nil {
			t.Fatalf("%q: %v", e, err)
		}
		raw, rawErr := Compile(e, LinkTypeRaw, 0)
		if err := attach(rawRx, eth); err != nil {
			t.Fatalf("%q: %v", e, err)
		}
		if rawErr == nil {
			err = attach(dgramRx, raw)
		} else {
			err = attach(dgramRx, []bpf.RawInstruction{{Op: bpfRET | bpfK, K: 0}})
		}
		if err != nil {
			t.Fatalf("%q: %v", e, err)
		}
		// In batches, each received before the next is sent, so lo's backlog
		// (netdev_max_backlog) never fills even if softirqs are deferred.
		var wantRaw, wantDgram, gotRaw, gotDgram [][]byte
		for i, p := range frames {
			if Match(eth, p.data) {
				wantRaw = append(wantRaw, p.data)
			}
			if rawErr == nil && Match(raw, p.data[14:]) {
				wantDgram = append(wantDgram, p.data[14:])
			}
			to := &unix.SockaddrLinklayer{Ifindex: lo, Halen: 6}
			copy(to.Addr[:], p.data[:6])
			if err := unix.Sendto(tx, p.data, 0, to); err != nil {
				t.Fatalf("send %s: %v", p.name, err)
			}
			if i%200 == 199 {
				gotRaw = receive(t, rawRx, gotRaw, len(wantRaw), 0)
				gotDgram = receive(t, dgramRx, gotDgram, len(wantDgram), 0)
			}
		}
		gotRaw = receive(t, rawRx, gotRaw, len(wantRaw), 20*time.Millisecond)
		gotDgram = receive(t, dgramRx, gotDgram, len(wantDgram), 20*time.Millisecond)
		if d := diffFrames(wantRaw, gotRaw); d != "" {
			t.Errorf("%q on lo (Ethernet): the kernel and the VM disagree: %s", e, d)
		}
		if d := diffFrames(wantDgram, gotDgram); d != "" {
			t.Errorf("%q on lo (SOCK_DGRAM, raw IP program): the kernel and the VM disagree: %s", e, d)
		}
		decisions += 2 * len(frames)
	}
	t.Logf("%d kernel decisions (%d expressions × %d frames × 2 sockets) agree with the VM", decisions, len(equivalenceExprs), len(frames))
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func packetSocket(typ, proto, ifindex int) (int, error) {
	fd, err := unix.Socket(unix.AF_PACKET, typ|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return -1, fmt.Errorf("AF_PACKET socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("SO_RCVBUFFORCE: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind to ifindex %d: %w", ifindex, err)
	}
	return fd, nil
}

// attach replaces fd's filter with prog, then discards what the old one let
// through.
func attach(fd int, prog []bpf.RawInstruction) error {
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, sockFprog(prog)); err != nil {
		return fmt.Errorf("SO_ATTACH_FILTER: %w", err)
	}
	buf := make([]byte, 1<<16)
	for {
		if _, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT); err != nil {
			return nil
		}
	}
}

// receive appends to got the frames fd receives (not its copies of outgoing
// ones) until got has want of them and quiet has passed since, or 2s pass.
func receive(t *testing.T, fd int, got [][]byte, want int, quiet time.Duration) [][]byte {
	t.Helper()
	buf := make([]byte, 1<<16)
	deadline := time.Now().Add(2 * time.Second)
	var end time.Time
	for {
		now := time.Now()
		if len(got) >= want && end.IsZero() {
			end = now.Add(quiet)
		}
		if !end.IsZero() && !now.Before(end) || !now.Before(deadline) {
			return got
		}
		until := deadline
		if !end.IsZero() {
			until = end
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, int(until.Sub(now).Milliseconds())+1); err != nil && err != unix.EINTR {
			t.Fatalf("poll: %v", err)
		}
		for {
			n, from, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
			if err != nil {
				break
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				continue
			}
			got = append(got, bytes.Clone(buf[:n]))
		}
	}
}

// diffFrames compares two multisets of frames; "" if equal.
func diffFrames(want, got [][]byte) string {
	count := map[string]int{}
	for _, f := range want {
		count[string(f)]++
	}
	for _, f := range got {
		count[string(f)]--
	}
	var missing, extra int
	var example string
	for f, n := range count {
		switch {
		case n > 0:
			missing += n
			example = fmt.Sprintf("missing %x", f)
		case n < 0:
			extra -= n
			example = fmt.Sprintf("unexpected %x", f)
		}
	}
	if missing == 0 && extra == 0 {
		return ""
	}
	return fmt.Sprintf("%d accepted by the VM not received, %d received not accepted (of %d expected); e.g. %s", missing, extra, len(want), example)
}
