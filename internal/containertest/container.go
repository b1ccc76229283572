package containertest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/testnet"
	"golang.org/x/sys/unix"
)

// RunOpts describes a container for [Docker.Run], [Podman.Run] and
// [HandMade].
type RunOpts struct {
	// Name is the container's name; empty picks "nmt-<random>".
	Name string
	// Labels are set on the container (ignored by HandMade).
	Labels map[string]string
	// Publish maps a container TCP port to a host port on 127.0.0.1;
	// host port 0 lets the runtime pick a free one. Ignored by HandMade
	// and with Network "host".
	Publish map[int]int
	// Cmd is the container's command; empty runs "sleep 86400". It is run by
	// the image's busybox (HandMade: /usr/bin/busybox Cmd...), so applet
	// names work without a path.
	Cmd []string
	// Network is "bridge" (the default: the runtime's private bridge) or
	// "host" (the host's network namespace; ignored by HandMade).
	Network string
}

func (o *RunOpts) defaults() {
	if o.Name == "" {
		o.Name = "nmt-" + randHex(4)
	}
	if len(o.Cmd) == 0 {
		o.Cmd = []string{"sleep", "86400"}
	}
	if o.Network == "" {
		o.Network = "bridge"
	}
}

// Container is a running container. Its fields are filled when Run returns.
type Container struct {
	// Runtime is "docker", "podman" or "handmade".
	Runtime string
	// ID is the container's full 64-hex id.
	ID string
	// Name is the container's name.
	Name string
	// PID is the host pid of the container's init process.
	PID int
	// IP is the container's IPv4 address on the bridge; invalid with
	// Network "host".
	IP netip.Addr
	// Gateway is the host side's address on the container's network: the
	// bridge's address (for HandMade, in its host-side namespace).
	Gateway netip.Addr
	// Netns is the path of the container's network namespace,
	// /proc/<PID>/ns/net (for HandMade, its /run/netns bind mount).
	Netns string
	// HostPort is the host port of the lowest published container port, or 0.
	HostPort int
	// Ports maps each published container port to its host port.
	Ports map[int]int
	// Cgroup is the container's cgroup v2 path relative to the cgroup2
	// mount, like /docker/<id> (the "0::" line of /proc/<PID>/cgroup).
	Cgroup string
	// CgroupsV1 maps each v1 hierarchy's controllers (like "cpu,cpuacct")
	// to the container's path in it; empty on a unified host and for HandMade.
	CgroupsV1 map[string]string
	// Labels are the labels the container was run with.
	Labels map[string]string

	// command returns a command that runs args inside the container as one of
	// its own processes; start starts it (nil: cmd.Start).
	command func(ctx context.Context, args ...string) *exec.Cmd
	start   func(cmd *exec.Cmd) error
}

// ExecCommand returns a command that runs args inside the container as the
// container's own process: `docker exec`, `podman exec`, or for HandMade
// /usr/bin/busybox args... in its cgroup and network namespace. Start it
// with [Container.StartCmd] (HandMade needs the namespace switch).
func (c *Container) ExecCommand(ctx context.Context, args ...string) *exec.Cmd {
	return c.command(ctx, args...)
}

// StartCmd starts a command from [Container.ExecCommand].
func (c *Container) StartCmd(cmd *exec.Cmd) error {
	if c.start != nil {
		return c.start(cmd)
	}
	return cmd.Start()
}

// ExecContext runs args inside the container (see [Container.ExecCommand])
// and returns its stdout; the error includes its stderr.
func (c *Container) ExecContext(ctx context.Context, args ...string) ([]byte, error) {
	cmd := c.command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := c.StartCmd(cmd); err != nil {
		return nil, fmt.Errorf("exec %q in %s: %w", args, c.Name, err)
	}
	if err := cmd.Wait(); err != nil {
		return stdout.Bytes(), fmt.Errorf("exec %q in %s: %w: %s", args, c.Name, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// Exec runs args inside the container and returns its stdout, failing t on
// error. It is bounded by t's context.
func (c *Container) Exec(t testing.TB, args ...string) string {
	t.Helper()
	out, err := c.ExecContext(t.Context(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// ReplyLen is the number of bytes a counting receiver ([Container.Sink],
// [ListenCount]) sends back after receiving n bytes: the decimal count and a
// newline, like busybox `wc -c`.
func ReplyLen(n int64) int { return len(strconv.FormatInt(n, 10)) + 1 }

// Sink is a one-connection counting receiver running inside a container.
type Sink struct {
	// Port is the TCP port it listens on inside the container.
	Port int

	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
	err    error
}

// Sink starts, inside the container, a receiver for one TCP connection on
// port: busybox `nc -l -p port -e sh -c 'wc -c | tee /dev/stderr'`. It reads
// until the sender half-closes, sends the count back ("N\n") and reports it
// to the test through the exec's stderr. Sink returns once the port listens
// in the container's namespace. Stop it with [Sink.Wait]; cleanup kills it.
func (c *Container) Sink(t testing.TB, port int) *Sink {
	t.Helper()
	s := &Sink{Port: port, done: make(chan struct{})}
	s.cmd = c.command(context.Background(), "sh", "-c",
		fmt.Sprintf("exec nc -l -p %d -e sh -c 'wc -c | tee /dev/stderr'", port))
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
	if err := c.StartCmd(s.cmd); err != nil {
		t.Fatalf("start sink on %s port %d: %v", c.Name, port, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	if err := c.waitListen(port, s.done, 10*time.Second); err != nil {
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Fatalf("sink on %s port %d: %v (stderr %q)", c.Name, port, err, s.stderr.String())
	}
	return s
}

// Wait waits until the sink's connection is done and returns the number of
// bytes it received, as counted inside the container.
func (s *Sink) Wait(ctx context.Context) (int64, error) {
	select {
	case <-s.done:
	case <-ctx.Done():
		_ = s.cmd.Process.Kill()
		<-s.done
		return 0, fmt.Errorf("sink on port %d: %w", s.Port, ctx.Err())
	}
	if s.err != nil {
		return 0, fmt.Errorf("sink on port %d: %w (stderr %q)", s.Port, s.err, s.stderr.String())
	}
	return parseCount(s.stderr.String())
}

func parseCount(s string) (int64, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, errors.New("no count reported")
	}
	n, err := strconv.ParseInt(f[len(f)-1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad count %q", s)
	}
	return n, nil
}

// Send sends exactly n zero bytes from inside the container to addr
// (host:port) over one TCP connection with busybox `head -c n /dev/zero | nc`,
// half-closes, and returns the count the receiver replied with. addr must be
// a counting receiver ([Container.Sink] or [ListenCount]). It fails t on
// error or when the receiver did not get exactly n bytes.
func (c *Container) Send(t testing.TB, addr string, n int64) int64 {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("send from %s: %v", c.Name, err)
	}
	out, err := c.ExecContext(t.Context(), "sh", "-c", fmt.Sprintf("head -c %d /dev/zero | nc %s %s", n, host, port))
	if err != nil {
		t.Fatalf("send %d bytes from %s to %s: %v", n, c.Name, addr, err)
	}
	got, err := parseCount(string(out))
	if err != nil {
		t.Fatalf("send %d bytes from %s to %s: reply: %v", n, c.Name, addr, err)
	}
	if got != n {
		t.Fatalf("send from %s to %s: receiver got %d bytes, sent %d", c.Name, addr, got, n)
	}
	return got
}

// waitListen waits until a TCP socket listens on port in the container's
// network namespace (read from /proc/<PID>/net/tcp{,6}), or done closes.
func (c *Container) waitListen(port int, done <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := listening(c.procNet(), port)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-done:
			return errors.New("exited before listening")
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("port %d not listening after %v", port, timeout)
		}
	}
}

// procNet returns the /proc/<pid>/net directory of a process in the
// container's network namespace.
func (c *Container) procNet() string { return filepath.Join("/proc", strconv.Itoa(c.PID), "net") }

func listening(procNet string, port int) (bool, error) {
	want := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(filepath.Join(procNet, f))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && f == "tcp6" {
				continue
			}
			return false, err
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 3 && strings.HasSuffix(fields[1], want) && fields[3] == "0A" {
				return true, nil
			}
		}
	}
	return false, nil
}

// Do runs fn on a locked OS thread switched into the container's network
// namespace. Sockets fn creates stay in it.
func (c *Container) Do(fn func() error) error { return doInNetns(c.Netns, fn) }

// Dial connects to address (numeric host:port) from inside the container's
// network namespace; it is a testnet.DialFunc. The process is the test's,
// not the container's: only the socket lives in the container's namespace.
func (c *Container) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	var conn net.Conn
	err := c.Do(func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, network, address)
		return err
	})
	return conn, err
}

// RoleCommand returns a command that runs an internal/testnet child role
// (the test binary re-executed, so TestMain must call [Main] or
// testnet.Main) inside the container's network namespace and cgroup v2
// (it starts there: CLONE_INTO_CGROUP). It is killed at t's cleanup. It is
// not one of the runtime's own processes (no pid namespace, mounts or
// capabilities of the container), but netmeter attributes it to the
// container's cgroup. Prefer [Container.StartRole], which also joins the
// container's cgroup v1 hierarchies.
func (c *Container) RoleCommand(t testing.TB, role string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := testnet.Command(t, nil, nil, role, args...)
	cmd.Env = append(cmd.Env, testnet.EnvNetns+"="+c.Netns)
	mnt, err := testnet.Cgroup2Mount()
	if err != nil {
		t.Fatalf("cgroup2 mount: %v", err)
	}
	dir := filepath.Join(mnt, c.Cgroup)
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open cgroup of %s: %v", c.Name, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = fd
	return cmd
}

// StartRole starts an internal/testnet role with [Container.RoleCommand],
// moves it into the container's cgroup v1 hierarchies too, and returns the
// child for testnet's Ready and Wait.
func (c *Container) StartRole(t testing.TB, role string, args ...string) *testnet.Child {
	t.Helper()
	ch := testnet.StartChild(t, c.RoleCommand(t, role, args...))
	for ctrl, rel := range c.CgroupsV1 {
		procs := filepath.Join("/sys/fs/cgroup", v1MountName(ctrl), rel, "cgroup.procs")
		if err := os.WriteFile(procs, []byte(strconv.Itoa(ch.Pid())), 0); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("move role into %s: %v", procs, err)
		}
	}
	return ch
}

// v1MountName maps a /proc/<pid>/cgroup controller list to the directory
// of its hierarchy under /sys/fs/cgroup ("name=systemd" → "systemd").
func v1MountName(ctrl string) string { return strings.TrimPrefix(ctrl, "name=") }

// readCgroups fills c.Cgroup and c.CgroupsV1 from /proc/<c.PID>/cgroup.
func (c *Container) readCgroups() error {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(c.PID), "cgroup"))
	if err != nil {
		return err
	}
	c.CgroupsV1 = map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			c.Cgroup = parts[2]
			continue
		}
		if parts[1] == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", v1MountName(parts[1]))); err == nil {
			c.CgroupsV1[parts[1]] = parts[2]
		}
	}
	if c.Cgroup == "" {
		return fmt.Errorf("no cgroup v2 line in /proc/%d/cgroup", c.PID)
	}
	return nil
}

// CountServer is a host-side counting receiver: for each connection it reads
// until the peer half-closes, replies with the count as a decimal line
// ("N\n", like busybox wc -c) and records it.
type CountServer struct {
	ln net.Listener

	mu     sync.Mutex
	counts []int64
	errs   []error
	cond   chan struct{}
	wg     sync.WaitGroup
}

// ListenCount starts a CountServer on a plain-TCP (not MPTCP) listener at
// addr (like "10.213.7.1:0", a container network's Gateway). It is closed at
// t's cleanup.
func ListenCount(t testing.TB, addr string) *CountServer {
	t.Helper()
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	return ServeCount(t, ln)
}

// ServeCount serves ln as a CountServer (ln may live in any namespace, like
// one from testnet's Netns.ListenTCP). It is closed at t's cleanup.
func ServeCount(t testing.TB, ln net.Listener) *CountServer {
	s := &CountServer{ln: ln, cond: make(chan struct{})}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Addr returns the listening address.
func (s *CountServer) Addr() net.Addr { return s.ln.Addr() }

// Port returns the listening port.
func (s *CountServer) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *CountServer) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			n, err := countConn(conn)
			s.mu.Lock()
			if err != nil {
				s.errs = append(s.errs, err)
			} else {
				s.counts = append(s.counts, n)
			}
			close(s.cond)
			s.cond = make(chan struct{})
			s.mu.Unlock()
		}()
	}
}

func countConn(conn net.Conn) (int64, error) {
	defer conn.Close()
	buf := make([]byte, 256<<10)
	var n int64
	for {
		k, err := conn.Read(buf)
		n += int64(k)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) || !isEOF(err) {
				return n, fmt.Errorf("read from %s after %d bytes: %w", conn.RemoteAddr(), n, err)
			}
			break
		}
	}
	if _, err := conn.Write([]byte(strconv.FormatInt(n, 10) + "\n")); err != nil {
		return n, fmt.Errorf("reply to %s: %w", conn.RemoteAddr(), err)
	}
	return n, nil
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) }

// Wait waits until conns connections have completed (or one failed, or ctx
// ended) and returns each connection's byte count in order of completion.
func (s *CountServer) Wait(ctx context.Context, conns int) ([]int64, error) {
	for {
		s.mu.Lock()
		counts, err, cond := append([]int64(nil), s.counts...), errors.Join(s.errs...), s.cond
		s.mu.Unlock()
		if err != nil {
			return counts, err
		}
		if len(counts) >= conns {
			return counts, nil
		}
		select {
		case <-cond:
		case <-ctx.Done():
			return counts, fmt.Errorf("%d of %d connections done: %w", len(counts), conns, ctx.Err())
		}
	}
}

// Close stops the server and waits for its connections to finish.
func (s *CountServer) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

// SendCount sends exactly n zero bytes to addr over one TCP connection
// dialed with dial (nil: from the test's namespace; [Container.Dial] dials
// from a container's), half-closes, and returns the count the receiver
// replied with. It fails unless the receiver got exactly n.
func SendCount(ctx context.Context, dial testnet.DialFunc, addr string, n int64) (int64, error) {
	if dial == nil {
		var d net.Dialer
		d.SetMultipathTCP(false)
		dial = d.DialContext
	}
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	buf := make([]byte, 256<<10)
	for left := n; left > 0; {
		k := min(left, int64(len(buf)))
		w, err := conn.Write(buf[:k])
		left -= int64(w)
		if err != nil {
			return 0, fmt.Errorf("send to %s: %d of %d bytes: %w", addr, n-left, n, err)
		}
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil {
			return 0, fmt.Errorf("half-close to %s: %w", addr, err)
		}
	}
	reply := make([]byte, 0, 32)
	for {
		k, err := conn.Read(buf)
		reply = append(reply, buf[:k]...)
		if err != nil {
			if !isEOF(err) {
				return 0, fmt.Errorf("reply from %s: %w", addr, err)
			}
			break
		}
	}
	got, err := parseCount(string(reply))
	if err != nil {
		return 0, fmt.Errorf("reply from %s: %w", addr, err)
	}
	if got != n {
		return got, fmt.Errorf("%s received %d bytes, sent %d", addr, got, n)
	}
	return got, nil
}
