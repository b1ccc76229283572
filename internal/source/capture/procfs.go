package capture

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// socketInodes returns the inodes of the sockets pid has open, read from
// the fd symlinks under proc (a filesystem rooted at /).
func socketInodes(fsys fs.FS, pid int) (map[uint32]bool, error) {
	dir := path.Join("proc", pidString(pid), "fd")
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no such process %d", pid)
		}
		return nil, fmt.Errorf("read fds of pid %d: %w", pid, err)
	}
	out := map[uint32]bool{}
	for _, e := range ents {
		target, err := fs.ReadLink(fsys, path.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if ino, ok := parseSocketLink(target); ok {
			out[ino] = true
		}
	}
	return out, nil
}

// parseSocketLink parses an fd link target "socket:[12345]".
func parseSocketLink(s string) (uint32, bool) {
	rest, ok := strings.CutPrefix(s, "socket:[")
	if !ok {
		return 0, false
	}
	rest, ok = strings.CutSuffix(rest, "]")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 32)
	return uint32(n), err == nil
}

// diagCookies lists TCP and UDP sockets (IPv4 and IPv6) of the network
// namespace at nsPath with sock_diag: inode → socket cookie.
func diagCookies(nsPath string) (map[uint32]uint64, error) {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", nsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("sock_diag in %s: %w", nsPath, err)
	}
	defer h.Close()
	out := map[uint32]uint64{}
	add := func(socks []*netlink.Socket, err error) error {
		if err != nil {
			return err
		}
		for _, s := range socks {
			out[s.INode] = uint64(s.ID.Cookie[0]) | uint64(s.ID.Cookie[1])<<32
		}
		return nil
	}
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		if err := add(h.SocketDiagTCP(fam)); err != nil {
			return nil, fmt.Errorf("sock_diag tcp: %w", err)
		}
		if err := add(h.SocketDiagUDP(fam)); err != nil {
			return nil, fmt.Errorf("sock_diag udp: %w", err)
		}
	}
	return out, nil
}

// PidsByName returns the processes whose comm (or, for longer names, the
// base name of argv[0]) is name.
func PidsByName(fsys fs.FS, name string) ([]int, error) {
	ents, err := fs.ReadDir(fsys, "proc")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := fs.ReadFile(fsys, path.Join("proc", e.Name(), "comm"))
		if err != nil {
			continue
		}
		c := strings.TrimSpace(string(comm))
		if c == name || (len(name) > 15 && c == name[:15]) {
			out = append(out, pid)
		}
	}
	return out, nil
}
