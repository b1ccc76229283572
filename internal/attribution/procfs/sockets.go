package procfs

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SocketInodes maps the inode of every socket that some process holds an fd
// to, to the pids holding it — the nethogs method of finding the owners of
// sockets that existed before netmeter started.
//
// A socket is shared by several processes after fork or fd passing; all of
// them are returned, sorted and without duplicates, and the caller decides
// which one to charge (the parent, the newest, the one eBPF last saw send).
//
// Only thread-group leaders are listed (threads share their leader's fd
// table). Processes that exit mid-scan, and those whose fd/ is not readable
// (another user's, without CAP_SYS_PTRACE), are skipped. On any other error
// the map holds what was found before it.
func (fs FS) SocketInodes() (map[uint64][]int, error) {
	root := fs.Root()
	rfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("scan sockets: %w", wrap("open", root, err))
	}
	defer unix.Close(rfd)

	s := newScanner()
	var pids []int
	err = s.dirents(rfd, root, func(name []byte, typ uint8) {
		if typ != unix.DT_DIR && typ != unix.DT_UNKNOWN {
			return
		}
		if pid, ok := parseDecimal(name); ok && pid > 0 && pid <= 1<<22 {
			pids = append(pids, int(pid))
		}
	})
	if err != nil {
		return nil, fmt.Errorf("scan sockets: %w", err)
	}

	var pairs []inodePID
	var firstErr error
	var name []byte
	for _, pid := range pids {
		name = strconv.AppendInt(name[:0], int64(pid), 10)
		name = append(name, "/fd"...)
		err := s.sockets(rfd, root, string(name), func(ino uint64) {
			pairs = append(pairs, inodePID{ino, pid})
		})
		if err != nil && !isGone(err) && !isDenied(err) {
			firstErr = fmt.Errorf("scan sockets: %w", err)
			break
		}
	}
	return group(pairs), firstErr
}

// SocketInodesOf returns the inodes of the sockets pid holds, sorted and
// without duplicates. If pid does not exist the error matches
// os.ErrNotExist.
func (fs FS) SocketInodesOf(pid int) ([]uint64, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("read sockets of %d: invalid pid", pid)
	}
	root := fs.Root()
	rfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, wrap("open", root, err)
	}
	defer unix.Close(rfd)
	var inodes []uint64
	err = newScanner().sockets(rfd, root, strconv.Itoa(pid)+"/fd", func(ino uint64) {
		inodes = append(inodes, ino)
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(inodes)
	return slices.Compact(inodes), nil
}

type inodePID struct {
	inode uint64
	pid   int
}

// group turns (inode, pid) pairs into the map SocketInodes returns. All pid
// lists share one backing array, capped so that a caller's append copies.
func group(pairs []inodePID) map[uint64][]int {
	slices.SortFunc(pairs, func(a, b inodePID) int {
		return cmp.Or(cmp.Compare(a.inode, b.inode), cmp.Compare(a.pid, b.pid))
	})
	pairs = slices.Compact(pairs)
	pids := make([]int, len(pairs))
	m := make(map[uint64][]int)
	for i := 0; i < len(pairs); {
		j := i
		for j < len(pairs) && pairs[j].inode == pairs[i].inode {
			pids[j] = pairs[j].pid
			j++
		}
		m[pairs[i].inode] = pids[i:j:j]
		i = j
	}
	return m
}

// scanner lists directories with getdents64 and reads links with
// readlinkat, reusing its buffers: a scan of a busy host reads tens of
// thousands of links, and none of them should cost an allocation.
type scanner struct {
	dirbuf  []byte
	linkbuf []byte
}

func newScanner() *scanner {
	return &scanner{dirbuf: make([]byte, 32<<10), linkbuf: make([]byte, 64)}
}

// dirents calls fn for each entry of the open directory fd except "." and
// "..". name is only valid during the call and is followed by a NUL in
// s.dirbuf.
func (s *scanner) dirents(fd int, path string, fn func(name []byte, typ uint8)) error {
	for {
		n, err := unix.Getdents(fd, s.dirbuf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return wrap("getdents", path, err)
		}
		if n <= 0 {
			return nil
		}
		buf := s.dirbuf[:n]
		// struct linux_dirent64 { u64 ino; s64 off; u16 reclen; u8 type; char name[]; }
		const nameOff = 19
		for len(buf) >= nameOff {
			reclen := int(binary.NativeEndian.Uint16(buf[16:18]))
			if reclen < nameOff || reclen > len(buf) {
				return fmt.Errorf("getdents %s: bad record length %d", path, reclen)
			}
			// The kernel NUL-terminates and pads names; skip one that is not.
			if end := bytes.IndexByte(buf[nameOff:reclen], 0); end >= 0 {
				name := buf[nameOff : nameOff+end]
				if string(name) != "." && string(name) != ".." {
					fn(name, buf[18])
				}
			}
			buf = buf[reclen:]
		}
	}
}

// sockets calls fn with the inode of every socket in the fd directory at
// rel (relative to the directory rootfd).
func (s *scanner) sockets(rootfd int, root, rel string, fn func(inode uint64)) error {
	fd, err := unix.Openat(rootfd, rel, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return wrap("open", root+"/"+rel, err)
	}
	defer unix.Close(fd)
	var linkErr error
	err = s.dirents(fd, root+"/"+rel, func(name []byte, typ uint8) {
		if typ != unix.DT_LNK && typ != unix.DT_UNKNOWN {
			return
		}
		// name is NUL-terminated inside s.dirbuf: pass it to the kernel
		// as is, without the copy unix.Readlinkat would make.
		n, err := readlinkat(fd, &name[:len(name)+1][0], s.linkbuf)
		if err != nil {
			// The fd was closed since getdents (ENOENT), or the process
			// exited (ESRCH/ENOENT): nothing to report for this link.
			if !isGone(err) && !isDenied(err) && linkErr == nil {
				linkErr = wrap("readlink", root+"/"+rel+"/"+string(name), err)
			}
			return
		}
		if ino, ok := parseSocketLink(s.linkbuf[:n]); ok {
			fn(ino)
		}
	})
	if err != nil {
		return err
	}
	return linkErr
}

// readlinkat is unix.Readlinkat for a name that is already NUL-terminated.
func readlinkat(dirfd int, name *byte, buf []byte) (int, error) {
	n, _, e := unix.Syscall6(unix.SYS_READLINKAT, uintptr(dirfd), uintptr(unsafe.Pointer(name)),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
