package procfs

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// socketTree builds a fake /proc whose fd/ directories hold links like the
// kernel's: sockets shared after fork, an fd dup'ed within a process,
// pipes, files, and entries that are not processes.
func socketTree(t *testing.T) FS {
	t.Helper()
	root := t.TempDir()
	links := map[string]string{
		"10/fd/0":         "/dev/null",
		"10/fd/3":         "socket:[100]",
		"10/fd/4":         "socket:[200]",
		"10/fd/5":         "pipe:[300]",
		"10/fd/6":         "anon_inode:[eventpoll]",
		"11/fd/3":         "socket:[100]",
		"11/fd/7":         "socket:[100]", // dup: 11 once
		"11/fd/8":         "socket:[garbage]",
		"11/task/12/fd/3": "socket:[999]", // a thread: its leader's table
		"2/fd/9":          "socket:[400]",
		"self/fd/3":       "socket:[500]", // not a pid
		"net/fd/3":        "socket:[600]",
		"123abc/fd/3":     "socket:[700]",
	}
	for rel, target := range links {
		mustSymlink(t, target, root, rel)
	}
	// A process whose fd/ is gone (exited mid-scan) and a plain file.
	if err := os.MkdirAll(filepath.Join(root, "13"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "14"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return NewFS(root)
}

func TestSocketInodesFixture(t *testing.T) {
	fs := socketTree(t)
	got, err := fs.SocketInodes()
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64][]int{100: {10, 11}, 200: {10}, 400: {2}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SocketInodes() = %v, want %v", got, want)
	}
	// The pid lists share a backing array: appending must not clobber a
	// neighbour.
	_ = append(got[100], 99)
	if !slices.Equal(got[200], []int{10}) {
		t.Errorf("append to one list changed another: %v", got)
	}

	of, err := fs.SocketInodesOf(11)
	if err != nil || !slices.Equal(of, []uint64{100}) {
		t.Errorf("SocketInodesOf(11) = %v, %v; want [100]", of, err)
	}
	if _, err := fs.SocketInodesOf(13); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("SocketInodesOf(13) error = %v, want os.ErrNotExist", err)
	}
	if _, err := fs.SocketInodesOf(-1); err == nil {
		t.Error("SocketInodesOf(-1) succeeded")
	}
}

func TestSocketInodesNoRoot(t *testing.T) {
	_, err := NewFS(filepath.Join(t.TempDir(), "nope")).SocketInodes()
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("SocketInodes() of a missing root: %v", err)
	}
}

// socketInode returns the inode of a socket's fd.
func socketInode(t *testing.T, c syscall.Conn) uint64 {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fstat(int(fd), &st) }); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		t.Fatalf("fd mode %o is not a socket", st.Mode)
	}
	return st.Ino
}

func TestSocketInodesLive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	tcpIno := socketInode(t, ln.(*net.TCPListener))
	udpIno := socketInode(t, udp.(*net.UDPConn))

	// Share the listener with a child, as a server that forks workers does.
	lf, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	child := startSleep(t, lf)

	fs := NewFS("")
	m, err := fs.SocketInodes()
	if err != nil {
		t.Fatal(err)
	}
	self := os.Getpid()
	want := []int{self, child.Process.Pid}
	slices.Sort(want)
	if got := m[tcpIno]; !slices.Equal(got, want) {
		t.Errorf("TCP listener inode %d held by %v, want %v", tcpIno, got, want)
	}
	if got := m[udpIno]; !slices.Equal(got, []int{self}) {
		t.Errorf("UDP socket inode %d held by %v, want [%d]", udpIno, got, self)
	}

	of, err := fs.SocketInodesOf(self)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(of, tcpIno) || !slices.Contains(of, udpIno) || !slices.IsSorted(of) {
		t.Errorf("SocketInodesOf(self) = %v, want sorted and holding %d and %d", of, tcpIno, udpIno)
	}
	if of, err := fs.SocketInodesOf(child.Process.Pid); err != nil || !slices.Contains(of, tcpIno) {
		t.Errorf("SocketInodesOf(child) = %v, %v; want it to hold %d", of, err, tcpIno)
	}
}

// BenchmarkSocketInodes scans the live /proc as it is, and again while this
// process holds 2000 more sockets, as a busy server does.
func BenchmarkSocketInodes(b *testing.B) {
	fs := NewFS("")
	scan := func(b *testing.B) {
		b.ReportAllocs()
		var n int
		for b.Loop() {
			m, err := fs.SocketInodes()
			if err != nil {
				b.Fatal(err)
			}
			n = len(m)
		}
		b.ReportMetric(float64(n), "sockets")
	}
	b.Run("host", scan)
	b.Run("host/naive", naiveScan)
	for range 2000 {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
	}
	b.Run("plus2000", scan)
	b.Run("plus2000/naive", naiveScan)
}

// naiveScan is the obvious os.ReadDir/os.Readlink scan, the baseline
// SocketInodes is measured against.
func naiveScan(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		m := map[uint64][]int{}
		procs, err := os.ReadDir("/proc")
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range procs {
			pid, ok := parseDecimal([]byte(p.Name()))
			if !ok {
				continue
			}
			fds, err := os.ReadDir("/proc/" + p.Name() + "/fd")
			if err != nil {
				continue
			}
			for _, fd := range fds {
				l, err := os.Readlink("/proc/" + p.Name() + "/fd/" + fd.Name())
				if ino, ok := parseSocketLink([]byte(l)); err == nil && ok {
					m[ino] = append(m[ino], int(pid))
				}
			}
		}
	}
}
