package capture

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

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
