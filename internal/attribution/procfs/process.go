package procfs

import (
	"fmt"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// MaxCmdline is how many bytes of /proc/<pid>/cmdline [FS.Process] reads;
// longer command lines (a JVM's class path) are cut, so that a cache of
// thousands of [Info] stays small.
const MaxCmdline = 4096

// maxStat bounds reads of the small one-record files; stat is < 1 KiB,
// status a few KiB (its CPU masks grow with the CPU count), cgroup one line
// per hierarchy.
const maxStat = 64 << 10

// Info describes a process as a user sees it.
type Info struct {
	PID  int
	Comm string // stat's comm: the thread-group leader's name, ≤ 15 bytes, raw
	// Exe is the target of /proc/<pid>/exe, as the kernel prints it (a
	// replaced binary ends in " (deleted)"); "" for kernel threads, zombies
	// and, without CAP_SYS_PTRACE, other users' processes.
	Exe string
	// Cmdline is the arguments joined by spaces and trimmed, cut at
	// MaxCmdline bytes; "" for kernel threads and zombies.
	Cmdline string
	UID     uint32 // real uid
	User    string // name of UID, "" if unknown
	PPID    int
	// StartTime is when the process started: boot time (1 s resolution)
	// plus StartTicks.
	StartTime time.Time
	// StartTicks is the raw start time in clock ticks (1/100 s) since boot;
	// together with PID it names one process, which a reused pid does not.
	StartTicks uint64
	// CgroupPath is the cgroup v2 path (the "0::" line of
	// /proc/<pid>/cgroup), relative to the reader's cgroup namespace.
	CgroupPath string
	// Cgroups holds the cgroup v1 path per controller ("memory",
	// "name=systemd", ...) on hosts with v1 hierarchies, where a container
	// runtime may place containers only in v1. nil on pure v2 hosts. Shared
	// with the Resolver's cache: do not modify.
	Cgroups map[string]string
	// NetnsInode identifies the process's network namespace; 0 if not
	// permitted.
	NetnsInode   uint64
	KernelThread bool // PF_KTHREAD: no exe, no cmdline, no sockets of its own
	State        byte // 'R', 'S', 'Z', ... as in stat
}

// Process reads what /proc says about pid. If pid does not exist or exits
// while it is read, the error matches os.ErrNotExist. All files are read
// through one descriptor of /proc/<pid>, so a pid reused mid-read is
// reported as exited, never mixed with the new process.
//
// A zombie (State 'Z') is returned without Exe and Cmdline: it still holds
// its pid, though no longer any socket.
func (fs FS) Process(pid int) (Info, error) {
	if pid <= 0 {
		return Info{}, fmt.Errorf("read process %d: invalid pid", pid)
	}
	d, err := fs.openPID(pid)
	if err != nil {
		return Info{}, err
	}
	defer d.close()

	b, err := d.read("stat", maxStat)
	if err != nil {
		return Info{}, err
	}
	st, err := parseStat(b)
	if err != nil {
		return Info{}, fmt.Errorf("parse %s/stat: %w", d.path, err)
	}
	info := Info{
		PID:          pid,
		Comm:         st.Comm,
		PPID:         st.PPID,
		StartTicks:   st.StartTicks,
		KernelThread: st.Flags&pfKthread != 0,
		State:        st.State,
	}

	if b, err = d.read("status", maxStat); err != nil {
		return Info{}, err
	}
	if info.UID, err = parseStatusUID(b); err != nil {
		return Info{}, fmt.Errorf("parse %s/status: %w", d.path, err)
	}

	if b, err = d.read("cgroup", maxStat); err != nil {
		return Info{}, err
	}
	if info.CgroupPath, info.Cgroups, err = parseCgroup(b); err != nil {
		return Info{}, fmt.Errorf("parse %s/cgroup: %w", d.path, err)
	}

	if b, err = d.read("cmdline", MaxCmdline); err != nil {
		return Info{}, err
	}
	info.Cmdline = parseCmdline(b)

	// Optional: absent for kernel threads and zombies (ENOENT), denied for
	// other users' processes without CAP_SYS_PTRACE. Whether ENOENT meant
	// "exited" is settled by the liveness check below.
	if info.Exe, err = d.readlink("exe"); err != nil && !isGone(err) && !isDenied(err) {
		return Info{}, err
	}
	if info.NetnsInode, err = d.inode("ns/net"); err != nil && !isGone(err) && !isDenied(err) {
		return Info{}, err
	}

	// Still the same process? Every read above went through d, whose task
	// was alive at the stat read; if it exited since, the optional reads
	// may have failed silently.
	if err := d.alive(); err != nil {
		return Info{}, err
	}

	boot, err := fs.BootTime()
	if err != nil {
		return Info{}, err
	}
	info.StartTime = startTime(boot, info.StartTicks)
	info.User = fs.userName(info.UID)
	return info, nil
}

// startTicks reads only the start time of pid, for [Resolver.Prune].
func (fs FS) startTicks(pid int) (uint64, error) {
	d, err := fs.openPID(pid)
	if err != nil {
		return 0, err
	}
	defer d.close()
	b, err := d.read("stat", maxStat)
	if err != nil {
		return 0, err
	}
	st, err := parseStat(b)
	if err != nil {
		return 0, fmt.Errorf("parse %s/stat: %w", d.path, err)
	}
	return st.StartTicks, nil
}

// pidDir is an open /proc/<pid>. The kernel ties the directory to the
// task's struct pid: once that task exits, lookups and reads through it fail
// with ENOENT or ESRCH even if the pid number is reused.
type pidDir struct {
	fd   int
	path string
}

func (fs FS) openPID(pid int) (pidDir, error) {
	p := fs.path(strconv.Itoa(pid))
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return pidDir{}, wrap("open", p, err)
	}
	return pidDir{fd: fd, path: p}, nil
}

func (d pidDir) close() { unix.Close(d.fd) }

// read reads up to limit bytes of the file name under d.
func (d pidDir) read(name string, limit int) ([]byte, error) {
	p := d.path + "/" + name
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, wrap("open", p, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 512)
	for len(buf) < limit {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):min(cap(buf), limit)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, wrap("read", p, err)
		}
		if n == 0 {
			break
		}
		buf = buf[:len(buf)+n]
	}
	return buf, nil
}

func (d pidDir) readlink(name string) (string, error) {
	var buf [unix.PathMax]byte
	n, err := unix.Readlinkat(d.fd, name, buf[:])
	if err != nil {
		return "", wrap("readlink", d.path+"/"+name, err)
	}
	return string(buf[:n]), nil
}

func (d pidDir) inode(name string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &st, 0); err != nil {
		return 0, wrap("stat", d.path+"/"+name, err)
	}
	return st.Ino, nil
}

// alive fails with a goneError if d's task has exited.
func (d pidDir) alive() error {
	if err := unix.Faccessat(d.fd, "stat", unix.F_OK, 0); err != nil {
		return wrap("access", d.path+"/stat", err)
	}
	return nil
}
