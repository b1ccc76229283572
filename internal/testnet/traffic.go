package testnet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Result is what a traffic generator or receiver did. Byte counts are
// application payload only.
type Result struct {
	// Proto is "tcp" or "udp".
	Proto string `json:"proto"`
	// Conns is the number of TCP connections completed (both sides agreed
	// on the byte count).
	Conns int `json:"conns,omitempty"`
	// Bytes is the payload sent (by a sender) or received (by a receiver).
	Bytes int64 `json:"bytes"`
	// PerConn is, for TCP, the payload of each connection in order of
	// completion.
	PerConn []int64 `json:"per_conn,omitempty"`
	// Datagrams is, for UDP, the number of datagrams sent or received.
	Datagrams int `json:"datagrams,omitempty"`
	// Lost is, for a UDP receiver, how many of the expected datagrams did
	// not arrive (never negative).
	Lost int `json:"lost,omitempty"`
	// Local and Remote are the addresses of the last socket used.
	Local  string `json:"local,omitempty"`
	Remote string `json:"remote,omitempty"`
	// Elapsed is the wall time the generator or receiver ran.
	Elapsed time.Duration `json:"elapsed_ns"`
}

// TCPAckSize is the size of the reply a [TCPServer] sends on each
// connection: the payload count it received, as a big-endian uint64. Tests
// that count bytes per direction must expect it from server to client.
const TCPAckSize = 8

// chunk is the payload pattern generators write, 64 KiB.
var chunk = func() []byte {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	return b
}()

// SendTCP opens conns TCP connections to addr one after another, dialed with
// dial, and sends exactly n payload bytes on each (conns=1 is one long
// transfer; many conns of small n are short connections). After each
// transfer it half-closes and waits for the server's [TCPAckSize]-byte count,
// and fails unless the server received exactly n. Result.Bytes is the payload
// confirmed by the server.
func SendTCP(ctx context.Context, dial DialFunc, addr string, n int64, conns int) (Result, error) {
	r := Result{Proto: "tcp"}
	start := time.Now()
	for i := range conns {
		local, remote, err := sendTCPOnce(ctx, dial, addr, n)
		if err != nil {
			r.Elapsed = time.Since(start)
			return r, fmt.Errorf("tcp connection %d/%d to %s: %w", i+1, conns, addr, err)
		}
		r.Conns++
		r.Bytes += n
		r.PerConn = append(r.PerConn, n)
		r.Local, r.Remote = local, remote
	}
	r.Elapsed = time.Since(start)
	return r, nil
}

func sendTCPOnce(ctx context.Context, dial DialFunc, addr string, n int64) (local, remote string, err error) {
	c, err := dial(ctx, "tcp", addr)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	local, remote = c.LocalAddr().String(), c.RemoteAddr().String()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()

	for left := n; left > 0; {
		w := min(left, int64(len(chunk)))
		m, err := c.Write(chunk[:w])
		left -= int64(m)
		if err != nil {
			return local, remote, fmt.Errorf("write after %d of %d bytes: %w", n-left, n, ctxErr(ctx, err))
		}
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil {
			return local, remote, fmt.Errorf("half-close: %w", err)
		}
	}
	var ack [TCPAckSize]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return local, remote, fmt.Errorf("read server count: %w", ctxErr(ctx, err))
	}
	if got := int64(binary.BigEndian.Uint64(ack[:])); got != n {
		return local, remote, fmt.Errorf("server received %d bytes, sent %d", got, n)
	}
	return local, remote, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

// TCPServer accepts TCP connections, reads each until the peer half-closes,
// replies with the count as [TCPAckSize] bytes, and records the count.
type TCPServer struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	cond chan struct{} // closed and replaced on every change
	res  Result
	errs []error
	conn map[net.Conn]struct{}
	done bool
}

// ServeTCP starts serving on ln (see [Netns.ListenTCP]) until Close.
func ServeTCP(ln net.Listener) *TCPServer {
	s := &TCPServer{ln: ln, cond: make(chan struct{}), conn: map[net.Conn]struct{}{}}
	s.res.Proto = "tcp"
	s.res.Local = ln.Addr().String()
	s.wg.Add(1)
	go s.accept()
	return s
}

// Addr returns the listening address.
func (s *TCPServer) Addr() net.Addr { return s.ln.Addr() }

func (s *TCPServer) accept() {
	defer s.wg.Done()
	start := time.Now()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			if !s.done {
				s.errs = append(s.errs, fmt.Errorf("accept: %w", err))
			}
			s.mu.Unlock()
			s.notify()
			return
		}
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conn[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c, start)
	}
}

func (s *TCPServer) serve(c net.Conn, start time.Time) {
	defer s.wg.Done()
	n, err := io.Copy(io.Discard, c)
	if err == nil {
		var ack [TCPAckSize]byte
		binary.BigEndian.PutUint64(ack[:], uint64(n))
		_, err = c.Write(ack[:])
	}
	remote := c.RemoteAddr().String()
	c.Close()
	s.mu.Lock()
	delete(s.conn, c)
	if err != nil {
		if !s.done {
			s.errs = append(s.errs, fmt.Errorf("connection from %s after %d bytes: %w", remote, n, err))
		}
	} else {
		s.res.Conns++
		s.res.Bytes += n
		s.res.PerConn = append(s.res.PerConn, n)
		s.res.Remote = remote
		s.res.Elapsed = time.Since(start)
	}
	s.mu.Unlock()
	s.notify()
}

func (s *TCPServer) notify() {
	s.mu.Lock()
	close(s.cond)
	s.cond = make(chan struct{})
	s.mu.Unlock()
}

// Result returns what the server has received so far, and the errors of
// failed connections joined.
func (s *TCPServer) Result() (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.res
	r.PerConn = append([]int64(nil), r.PerConn...)
	return r, errors.Join(s.errs...)
}

// Wait waits until conns connections have completed (or one failed, or ctx
// ends) and returns [TCPServer.Result].
func (s *TCPServer) Wait(ctx context.Context, conns int) (Result, error) {
	for {
		s.mu.Lock()
		n, nerr, ch := s.res.Conns, len(s.errs), s.cond
		s.mu.Unlock()
		if n >= conns || nerr > 0 {
			return s.Result()
		}
		select {
		case <-ch:
		case <-ctx.Done():
			r, err := s.Result()
			return r, errors.Join(fmt.Errorf("tcp server: %d of %d connections: %w", r.Conns, conns, ctx.Err()), err)
		}
	}
}

// Close stops accepting, aborts open connections and waits for all of the
// server's goroutines to exit.
func (s *TCPServer) Close() error {
	s.mu.Lock()
	s.done = true
	for c := range s.conn {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

// SendUDP sends k datagrams of size payload bytes each to addr from one
// socket dialed with dial, and reports what it sent. Each datagram starts
// with its sequence number (big-endian uint64) when size >= 8. UDP gives no
// confirmation: compare with the [UDPReceiver]'s Result.
func SendUDP(ctx context.Context, dial DialFunc, addr string, k, size int) (Result, error) {
	r := Result{Proto: "udp"}
	start := time.Now()
	c, err := dial(ctx, "udp", addr)
	if err != nil {
		return r, fmt.Errorf("dial udp %s: %w", addr, err)
	}
	defer c.Close()
	r.Local, r.Remote = c.LocalAddr().String(), c.RemoteAddr().String()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, size)
	copy(buf, chunk)
	for i := range k {
		if size >= 8 {
			binary.BigEndian.PutUint64(buf, uint64(i))
		}
		m, err := c.Write(buf)
		if err != nil {
			r.Elapsed = time.Since(start)
			return r, fmt.Errorf("udp datagram %d/%d to %s: %w", i+1, k, addr, ctxErr(ctx, err))
		}
		if m != size {
			return r, fmt.Errorf("udp datagram %d/%d to %s: short write %d of %d", i+1, k, addr, m, size)
		}
		r.Datagrams++
		r.Bytes += int64(m)
	}
	r.Elapsed = time.Since(start)
	return r, nil
}

// UDPReceiverBuffer is the receive buffer [ReceiveUDP] asks for (with
// SO_RCVBUFFORCE as root), so bursts from [SendUDP] are not dropped.
const UDPReceiverBuffer = 32 << 20

// UDPReceiver counts the datagrams and payload bytes arriving on a socket.
type UDPReceiver struct {
	conn *net.UDPConn
	done chan struct{}
	mu   sync.Mutex
	cond chan struct{}
	res  Result
	err  error
}

// ReceiveUDP starts counting datagrams on conn (see [Netns.ListenUDP]) until
// Close. It enlarges conn's receive buffer to [UDPReceiverBuffer].
func ReceiveUDP(conn *net.UDPConn) *UDPReceiver {
	setRcvbufForce(conn, UDPReceiverBuffer)
	r := &UDPReceiver{conn: conn, done: make(chan struct{}), cond: make(chan struct{})}
	r.res.Proto = "udp"
	r.res.Local = conn.LocalAddr().String()
	go r.loop()
	return r
}

// Addr returns the socket's local address.
func (r *UDPReceiver) Addr() net.Addr { return r.conn.LocalAddr() }

func (r *UDPReceiver) loop() {
	defer close(r.done)
	buf := make([]byte, 64<<10)
	var start time.Time
	for {
		n, from, err := r.conn.ReadFromUDPAddrPort(buf)
		r.mu.Lock()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				r.err = err
			}
			r.mu.Unlock()
			r.notify()
			return
		}
		if start.IsZero() {
			start = time.Now()
		}
		r.res.Datagrams++
		r.res.Bytes += int64(n)
		r.res.Remote = from.String()
		r.res.Elapsed = time.Since(start)
		r.mu.Unlock()
		r.notify()
	}
}

func (r *UDPReceiver) notify() {
	r.mu.Lock()
	close(r.cond)
	r.cond = make(chan struct{})
	r.mu.Unlock()
}

// Result returns what has arrived so far; want, if positive, sets Lost to
// the shortfall.
func (r *UDPReceiver) Result(want int) (Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := r.res
	if want > res.Datagrams {
		res.Lost = want - res.Datagrams
	}
	return res, r.err
}

// Wait waits until want datagrams have arrived, the socket fails, or ctx
// ends, and returns [UDPReceiver.Result]. Missing datagrams are reported in
// Result.Lost, not as an error: losses are data.
func (r *UDPReceiver) Wait(ctx context.Context, want int) (Result, error) {
	for {
		r.mu.Lock()
		n, err, ch := r.res.Datagrams, r.err, r.cond
		r.mu.Unlock()
		if n >= want || err != nil {
			return r.Result(want)
		}
		select {
		case <-ch:
		case <-r.done:
			return r.Result(want)
		case <-ctx.Done():
			return r.Result(want)
		}
	}
}

// Close closes the socket and waits for the receiving goroutine to exit.
func (r *UDPReceiver) Close() error {
	err := r.conn.Close()
	<-r.done
	return err
}

// setRcvbufForce sets the socket's receive buffer to n bytes, above
// net.core.rmem_max when privileged, and falls back to SetReadBuffer.
func setRcvbufForce(c *net.UDPConn, n int) {
	rc, err := c.SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
		})
		if cerr == nil && err == nil {
			return
		}
	}
	_ = c.SetReadBuffer(n) // best effort: capped at rmem_max
}
