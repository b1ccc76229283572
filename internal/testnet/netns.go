package testnet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetnsDir is where named network namespaces are bind-mounted, as by
// `ip netns add`, so tools such as ip(8) and nsenter(1) can see them.
const NetnsDir = "/run/netns"

// NetnsPrefix starts the name of every namespace this package creates.
const NetnsPrefix = "nmt-"

// Netns is a named network namespace created for one test. It lives until the
// test's cleanup, which unmounts and removes /run/netns/<Name>; links inside
// it vanish with it once no socket or process still holds it.
type Netns struct {
	// Name is the namespace's name under /run/netns, like "nmt-1a2b3c".
	Name string

	fd  netns.NsHandle
	nl  *netlink.Handle
	ino uint64
}

// NewNetns creates a fresh named network namespace, brings its lo up, and
// registers its removal with t.Cleanup. It fails t on error.
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	RequirePrivileged(t)
	ns, err := newNetns(t)
	if err != nil {
		t.Fatalf("create netns: %v", err)
	}
	return ns
}

func newNetns(t testing.TB) (*Netns, error) {
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		return nil, err
	}
	var name string
	for range 10 {
		name = NetnsPrefix + randHex(3)
		f, err := os.OpenFile(filepath.Join(NetnsDir, name), os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
		if errors.Is(err, os.ErrExist) {
			name = ""
			continue
		}
		if err != nil {
			return nil, err
		}
		f.Close()
		break
	}
	if name == "" {
		return nil, errors.New("no free name under " + NetnsDir)
	}
	ns := &Netns{Name: name, fd: -1}
	// Registered before the mount, so a failure below still removes the file.
	t.Cleanup(func() { ns.destroy(t) })

	if err := bindNewNetns(ns.Path()); err != nil {
		return nil, err
	}
	fd, err := netns.GetFromPath(ns.Path())
	if err != nil {
		return nil, err
	}
	ns.fd = fd
	var st unix.Stat_t
	if err := unix.Fstat(int(fd), &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", ns.Path(), err)
	}
	ns.ino = st.Ino
	nl, err := netlink.NewHandleAt(fd)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", name, err)
	}
	ns.nl = nl
	if err := ns.SetUp("lo"); err != nil {
		return nil, err
	}
	return ns, nil
}

// bindNewNetns unshares a new network namespace on a locked thread,
// bind-mounts it on path and switches the thread back.
func bindNewNetns(path string) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open current netns: %w", err)
	}
	defer orig.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("unshare netns: %w", err)
	}
	mountErr := unix.Mount("/proc/thread-self/ns/net", path, "none", unix.MS_BIND, "")
	if err := unix.Setns(int(orig), unix.CLONE_NEWNET); err != nil {
		// Stay locked: the runtime discards the thread when this goroutine
		// exits instead of reusing it in the wrong namespace.
		return errors.Join(mountErr, fmt.Errorf("restore netns: %w", err))
	}
	runtime.UnlockOSThread()
	if mountErr != nil {
		return fmt.Errorf("bind-mount netns on %s: %w", path, mountErr)
	}
	return nil
}

func (ns *Netns) destroy(t testing.TB) {
	if ns.nl != nil {
		ns.nl.Close()
	}
	if ns.fd >= 0 {
		ns.fd.Close()
	}
	p := ns.Path()
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		t.Errorf("unmount netns %s: %v", p, err)
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			t.Logf("netns %s already gone", p)
			return
		}
		t.Errorf("remove netns %s: %v", p, err)
	}
}

// Path returns the namespace's bind mount, /run/netns/<Name>.
func (ns *Netns) Path() string { return filepath.Join(NetnsDir, ns.Name) }

// Inode returns the namespace's inode number: the number in
// "net:[4026532000]" of /proc/<pid>/ns/net, which identifies it.
func (ns *Netns) Inode() uint64 { return ns.ino }

// Handle returns an open handle to the namespace. It belongs to ns and is
// closed at cleanup: do not close it.
func (ns *Netns) Handle() netns.NsHandle { return ns.fd }

// Netlink returns a netlink handle whose socket lives in the namespace, for
// operations this package does not wrap. It belongs to ns: do not close it.
func (ns *Netns) Netlink() *netlink.Handle { return ns.nl }

// String returns the namespace's name.
func (ns *Netns) String() string {
	if ns == nil {
		return "host netns"
	}
	return ns.Name
}

// Do runs fn on a locked OS thread switched into the namespace and switches
// the thread back afterwards. Sockets fn creates stay in the namespace after
// Do returns; goroutines fn starts do not run in it. If switching back fails
// the thread stays locked, so the runtime discards it when the goroutine
// exits, and Do reports the error. A nil *Netns runs fn in the caller's
// namespace.
func (ns *Netns) Do(fn func() error) (err error) {
	if ns == nil {
		return fn()
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open current netns: %w", err)
	}
	if err := unix.Setns(int(ns.fd), unix.CLONE_NEWNET); err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns %s: %w", ns.Name, err)
	}
	defer func() {
		// Deferred so a panicking fn still restores the thread.
		restoreErr := unix.Setns(int(orig), unix.CLONE_NEWNET)
		orig.Close()
		if restoreErr != nil {
			err = errors.Join(err, fmt.Errorf("leave netns %s: %w", ns.Name, restoreErr))
			return // thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}

// Start starts cmd, any program, inside the namespace: os/exec forks from
// the calling thread, which Start has switched into ns, and the child keeps
// that namespace. Test roles are better started with [Command], which also
// works with exec.Cmd's Run and Output. A nil *Netns starts cmd normally.
func (ns *Netns) Start(cmd *exec.Cmd) error { return ns.Do(cmd.Start) }

// ProcNetDev returns the raw contents of /proc/net/dev as seen from inside
// the namespace (read through /proc/thread-self/net/dev on a thread switched
// into it). A nil *Netns reads the caller's namespace.
func (ns *Netns) ProcNetDev() ([]byte, error) {
	var b []byte
	err := ns.Do(func() (err error) {
		b, err = os.ReadFile("/proc/thread-self/net/dev")
		return err
	})
	return b, err
}

// Sysctl writes value to the sysctl key (like "net.ipv6.conf.eth0.accept_dad"
// or "net/ipv6/conf/eth0/accept_dad") as seen from inside the namespace.
// Only net.* keys are namespaced; Sysctl refuses others, so it cannot change
// a host-wide setting by mistake. Interface names containing dots must use
// the slash form.
func (ns *Netns) Sysctl(key, value string) error {
	if ns == nil {
		return errors.New("sysctl: refusing to write the host's namespace")
	}
	p := sysctlPath(key)
	if !strings.HasPrefix(p, "/proc/sys/net/") {
		return fmt.Errorf("sysctl %s: not a net.* key", key)
	}
	return ns.Do(func() error {
		// /proc/sys/net resolves against the opening thread's namespace.
		if err := os.WriteFile(p, []byte(value), 0); err != nil {
			return fmt.Errorf("sysctl %s in %s: %w", key, ns.Name, err)
		}
		return nil
	})
}

// ReadSysctl reads the sysctl key as seen from inside the namespace (the
// caller's namespace if ns is nil), without the trailing newline.
func (ns *Netns) ReadSysctl(key string) (string, error) {
	var s string
	err := ns.Do(func() error {
		b, err := os.ReadFile(sysctlPath(key))
		s = strings.TrimSpace(string(b))
		return err
	})
	return s, err
}

func sysctlPath(key string) string {
	if !strings.Contains(key, "/") {
		key = strings.ReplaceAll(key, ".", "/")
	}
	return filepath.Join("/proc/sys", key)
}

// DialFunc dials like net.Dialer.DialContext. [Netns.Dial] is one.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Dial connects to address from inside the namespace (from the caller's
// namespace if ns is nil). It is a [DialFunc]. The connection's socket stays
// in the namespace; use it from any goroutine. address must be a numeric
// host:port so no resolver runs on other threads.
func (ns *Netns) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// ListenTCP opens a plain-TCP (not MPTCP) listener on address inside the
// namespace (in the caller's namespace if ns is nil). network is "tcp",
// "tcp4" or "tcp6".
func (ns *Netns) ListenTCP(ctx context.Context, network, address string) (net.Listener, error) {
	var ln net.Listener
	err := ns.Do(func() (err error) {
		var lc net.ListenConfig
		lc.SetMultipathTCP(false)
		ln, err = lc.Listen(ctx, network, address)
		return err
	})
	return ln, err
}

// ListenUDP opens a UDP socket bound to address inside the namespace (in the
// caller's namespace if ns is nil). network is "udp", "udp4" or "udp6".
func (ns *Netns) ListenUDP(ctx context.Context, network, address string) (*net.UDPConn, error) {
	var c net.PacketConn
	err := ns.Do(func() (err error) {
		var lc net.ListenConfig
		c, err = lc.ListenPacket(ctx, network, address)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.(*net.UDPConn), nil
}

func randHex(n int) string { return hex.EncodeToString(randBytes(n)) }

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails: crypto/rand crashes the program instead
	return b
}
