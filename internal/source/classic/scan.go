package classic

import (
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/netmeter/netmeter/internal/attribution/procfs"
	"github.com/netmeter/netmeter/internal/source/engine"
)

// netFiles are the /proc/net tables the scanner reads, with their protocol.
var netFiles = []struct {
	name  string
	proto uint8
}{{"tcp", protoTCP}, {"tcp6", protoTCP}, {"udp", protoUDP}, {"udp6", protoUDP}}

// minFullScan is the least time between two scans of every /proc/<pid>/fd
// (about 1 ms on a quiet host; nethogs does one per refresh).
const minFullScan = 20 * time.Millisecond

// recentPIDs is how many recent socket owners are looked at before a full
// scan: a process that opens short connections one after the other is
// found by reading its fd directory alone.
const recentPIDs = 16

// maxCachedInodes bounds the inode → pid cache between two full scans.
const maxCachedInodes = 1 << 20

// scanner finds the sockets of one namespace and their owners. One
// goroutine at a time uses it (Engine.scanMu).
type scanner struct {
	files    []*os.File // /proc/thread-self/net/* opened inside the namespace
	fs       procfs.FS
	lookup   func(pid int) (procfs.Info, bool)
	inodePID map[uint64]int
	recent   []int
	lastFull time.Time
	buf      []byte
	socks    []procfs.NetSocket
}

// read returns the sockets of every /proc/net table.
func (sc *scanner) read() ([]procfs.NetSocket, error) {
	sc.socks = sc.socks[:0]
	for i, f := range sc.files {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("rewind %s: %w", f.Name(), err)
		}
		sc.buf = sc.buf[:0]
		for {
			if len(sc.buf) == cap(sc.buf) {
				sc.buf = slices.Grow(sc.buf, max(64<<10, cap(sc.buf)))
			}
			n, err := f.Read(sc.buf[len(sc.buf):cap(sc.buf)])
			sc.buf = sc.buf[:len(sc.buf)+n]
			if err == io.EOF || (err == nil && n == 0) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", f.Name(), err)
			}
		}
		var err error
		if sc.socks, err = procfs.ParseNetSockets(sc.buf, netFiles[i].proto, sc.socks); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name(), err)
		}
	}
	return sc.socks, nil
}

// scan reads the sockets and finds the owner of each one owned does not
// know yet: first in the cache of the last fd scan, then among the recent
// owners' fds, then with a scan of every process (at most every
// minFullScan).
func (sc *scanner) scan(now time.Time, owned func(inode uint64) bool) ([]sockInfo, error) {
	socks, err := sc.read()
	if err != nil {
		return nil, err
	}
	out := make([]sockInfo, len(socks))
	var missing []int // indexes into out
	for i := range socks {
		out[i].NetSocket = socks[i]
		if ino := socks[i].Inode; ino != 0 && !owned(ino) {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		sc.findOwners(now, out, missing)
	}
	for _, i := range missing {
		pid, ok := sc.inodePID[out[i].Inode]
		if !ok {
			continue
		}
		info, ok := sc.lookup(pid)
		if !ok {
			continue
		}
		out[i].HasOwner = true
		out[i].Owner = engine.Owner{
			TGID: uint32(pid), TID: uint32(pid), UID: out[i].UID, Comm: info.Comm,
			StartBoottime: procfs.BoottimeFromStartTicks(info.StartTicks),
		}
		sc.remember(pid)
	}
	return out, nil
}

func (sc *scanner) findOwners(now time.Time, out []sockInfo, missing []int) {
	unresolved := func() int {
		n := 0
		for _, i := range missing {
			if _, ok := sc.inodePID[out[i].Inode]; !ok {
				n++
			}
		}
		return n
	}
	if sc.inodePID == nil {
		sc.inodePID = map[uint64]int{}
	}
	if unresolved() == 0 {
		return
	}
	if len(sc.inodePID) > maxCachedInodes {
		clear(sc.inodePID) // the next full scan refills it
	}
	for _, pid := range sc.recent {
		inodes, err := sc.fs.SocketInodesOf(pid)
		if err != nil {
			continue
		}
		for _, ino := range inodes {
			if old, ok := sc.inodePID[ino]; !ok || pid < old {
				sc.inodePID[ino] = pid
			}
		}
	}
	if unresolved() == 0 || now.Sub(sc.lastFull) < minFullScan {
		return
	}
	sc.lastFull = now
	m, err := sc.fs.SocketInodes()
	if m == nil && err != nil {
		return
	}
	clear(sc.inodePID)
	for ino, pids := range m {
		if len(pids) > 0 {
			sc.inodePID[ino] = pids[0] // the lowest: the parent of a forked server
		}
	}
}

// remember puts pid first among the recent owners.
func (sc *scanner) remember(pid int) {
	if i := slices.Index(sc.recent, pid); i >= 0 {
		sc.recent = slices.Delete(sc.recent, i, i+1)
	}
	sc.recent = slices.Insert(sc.recent, 0, pid)
	if len(sc.recent) > recentPIDs {
		sc.recent = sc.recent[:recentPIDs]
	}
}
