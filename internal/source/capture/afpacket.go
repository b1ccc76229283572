package capture

import (
	"errors"
	"fmt"
	"net"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/netmeter/netmeter/internal/nsutil"
	"github.com/netmeter/netmeter/internal/pcapfilter"
)

// Iface is an interface capture: an AF_PACKET socket bound to one
// interface with the compiled filter attached in the kernel, so rejected
// packets never reach userspace (as libpcap does it, without libpcap).
type Iface struct {
	fd       int
	ifindex  int
	LinkType pcapfilter.LinkType
	buf, oob []byte
	drops    uint64
	received uint64
	timeout  time.Duration // SO_RCVTIMEO as last set
}

// OpenIface opens a capture on the interface name in the network namespace
// at nsPath ("" for the current one), keeping the packets expr accepts and
// at most snaplen bytes of each (0: pcapfilter.DefaultSnaplen), with a
// receive buffer of bufSize bytes (0: 32 MiB).
func OpenIface(nsPath, name, expr string, snaplen, bufSize int) (*Iface, error) {
	c := &Iface{fd: -1}
	err := nsutil.Do(nsPath, func() error {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return fmt.Errorf("no such interface %q: %w", name, err)
		}
		c.ifindex = ifc.Index
		c.LinkType = pcapfilter.LinkTypeEthernet
		if ifc.Flags&net.FlagPointToPoint != 0 && len(ifc.HardwareAddr) == 0 && ifc.Flags&net.FlagLoopback == 0 {
			c.LinkType = pcapfilter.LinkTypeRaw // tun and other IP-only links
		}
		// Protocol 0: the socket receives nothing until bind, so no
		// packet passes before the filter is attached.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open AF_PACKET socket (needs CAP_NET_RAW): %w", err)
		}
		c.fd = fd
		return nil
	})
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	if snaplen <= 0 {
		snaplen = pcapfilter.DefaultSnaplen
	}
	prog, err := pcapfilter.Compile(expr, c.LinkType, uint32(snaplen))
	if err != nil {
		return nil, err
	}
	if err := attachFilter(c.fd, prog); err != nil {
		return nil, err
	}
	if bufSize <= 0 {
		bufSize = 32 << 20
	}
	_ = unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, bufSize)
	if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return nil, fmt.Errorf("capture %s: SO_TIMESTAMPNS: %w", name, err)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: c.ifindex}
	if err := unix.Bind(c.fd, sa); err != nil {
		return nil, fmt.Errorf("capture %s: bind: %w", name, err)
	}
	c.buf = make([]byte, snaplen)
	c.oob = make([]byte, 128)
	ok = true
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func attachFilter(fd int, prog []bpf.RawInstruction) error {
	if len(prog) == 0 {
		return errors.New("empty filter program")
	}
	fp := unix.SockFprog{Len: uint16(len(prog)), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fp); err != nil {
		return fmt.Errorf("attach filter: %w", err)
	}
	return nil
}

// Ifindex is the captured interface's index.
func (c *Iface) Ifindex() int { return c.ifindex }

// Next returns the next packet, or an error wrapping os.ErrDeadlineExceeded
// (unix.EAGAIN) when none arrives before deadline. Data is valid until the
// next call.
func (c *Iface) Next(deadline time.Time) (Packet, error) {
	// The receive timeout, to the millisecond, is set only when it changes:
	// callers ask for the same one packet after packet.
	d := max(time.Until(deadline).Round(time.Millisecond), time.Millisecond)
	if d != c.timeout {
		tv := unix.NsecToTimeval(d.Nanoseconds())
		if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return Packet{}, err
		}
		c.timeout = d
	}
	for {
		n, oobn, flags, from, err := unix.Recvmsg(c.fd, c.buf, c.oob, unix.MSG_TRUNC)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return Packet{}, errTimeout
		}
		if err != nil {
			return Packet{}, fmt.Errorf("read packet: %w", err)
		}
		_ = flags
		p := Packet{OrigLen: n, Ifindex: c.ifindex, Data: c.buf[:min(n, len(c.buf))]}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok {
			if ll.Pkttype == unix.PACKET_OUTGOING {
				p.Dir = DirOut
			} else {
				p.Dir = DirIn
			}
		}
		p.Time = packetTime(c.oob[:oobn])
		return p, nil
	}
}

func packetTime(oob []byte) time.Time {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err == nil {
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
				ts := *(*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
				return time.Unix(ts.Unix())
			}
		}
	}
	return time.Now()
}

// Drops returns the packets the kernel accepted for this socket and those
// it dropped because the socket's buffer was full, since open.
func (c *Iface) Drops() (received, dropped uint64, err error) {
	st, err := unix.GetsockoptTpacketStats(c.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return c.received, c.drops, fmt.Errorf("read capture statistics: %w", err)
	}
	// The counters reset on every read.
	c.received += uint64(st.Packets) - uint64(st.Drops) // tp_packets includes the drops
	c.drops += uint64(st.Drops)
	return c.received, c.drops, nil
}

// Close closes the socket.
func (c *Iface) Close() error {
	if c.fd < 0 {
		return nil
	}
	err := unix.Close(c.fd)
	c.fd = -1
	return err
}
