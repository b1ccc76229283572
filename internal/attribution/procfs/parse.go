package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// userHZ is the unit of the clock-tick fields of /proc/<pid>/stat. The
// kernel exports USER_HZ, which is 100 on every Linux architecture Go runs
// on; x/sys has no sysconf(_SC_CLK_TCK) to ask.
const userHZ = 100

// pfKthread is PF_KTHREAD in the flags field of /proc/<pid>/stat.
const pfKthread = 0x00200000

// procStat is what Process needs from /proc/<pid>/stat.
type procStat struct {
	PID        int
	Comm       string
	State      byte
	PPID       int
	Flags      uint64
	StartTicks uint64
}

// parseStat parses /proc/<pid>/stat. The comm field is whatever the process
// chose (prctl(PR_SET_NAME), up to 15 bytes) and may hold spaces, parentheses
// and newlines, so it runs from the first '(' to the LAST ')'.
func parseStat(b []byte) (procStat, error) {
	var s procStat
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return s, errors.New("no (comm) field")
	}
	pid, ok := parseDecimal(bytes.TrimRight(b[:open], " "))
	if !ok || pid == 0 || pid > math.MaxInt32 {
		return s, fmt.Errorf("bad pid %q", b[:open])
	}
	s.PID = int(pid)
	s.Comm = string(b[open+1 : end])
	// Fields after the comm, numbered as in proc(5) from field 3 (state);
	// only those up to starttime are kept, without allocating.
	const (
		fState     = 3
		fPPID      = 4
		fFlags     = 9
		fStartTime = 22
	)
	var f [fStartTime + 1][]byte
	n := 2
	rest := b[end+1:]
	for n < fStartTime {
		rest = bytes.TrimLeft(rest, " \n")
		if len(rest) == 0 {
			break
		}
		i := bytes.IndexAny(rest, " \n")
		if i < 0 {
			i = len(rest)
		}
		n++
		f[n], rest = rest[:i], rest[i:]
	}
	if n < fStartTime {
		return s, fmt.Errorf("%d fields after comm, want at least %d", n-2, fStartTime-2)
	}
	if len(f[fState]) != 1 {
		return s, fmt.Errorf("bad state %q", f[fState])
	}
	s.State = f[fState][0]
	ppid, ok := parseDecimal(f[fPPID])
	if !ok || ppid > math.MaxInt32 {
		return s, fmt.Errorf("bad ppid %q", f[fPPID])
	}
	s.PPID = int(ppid)
	if s.Flags, ok = parseDecimal(f[fFlags]); !ok {
		return s, fmt.Errorf("bad flags %q", f[fFlags])
	}
	if s.StartTicks, ok = parseDecimal(f[fStartTime]); !ok {
		return s, fmt.Errorf("bad starttime %q", f[fStartTime])
	}
	return s, nil
}

// parseStatusUID returns the real uid from the "Uid:" line of
// /proc/<pid>/status ("Uid:\treal\teffective\tsaved\tfs").
func parseStatusUID(b []byte) (uint32, error) {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("Uid:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			return 0, errors.New("empty Uid line")
		}
		uid, err := strconv.ParseUint(string(f[0]), 10, 32)
		if err != nil {
			return 0, fmt.Errorf("bad uid %q", f[0])
		}
		return uint32(uid), nil
	}
	return 0, errors.New("no Uid line")
}

// parseCgroup parses /proc/<pid>/cgroup ("hierarchy-id:controllers:path"
// per line). It returns the cgroup v2 path (the "0::" line, "" if absent)
// and the v1 paths keyed by controller; a line naming several controllers
// ("4:cpu,cpuacct:/x") gives each its own key, named hierarchies keep their
// "name=" prefix ("name=systemd").
//
// The kernel does not escape cgroup names, and a name may hold a newline; a
// line that does not parse is taken as the continuation of the previous
// line's path. A first line that does not parse is an error.
func parseCgroup(b []byte) (v2 string, v1 map[string]string, err error) {
	var (
		haveLine bool
		lastV2   bool
		lastKeys []string
	)
	for line := range bytes.Lines(b) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		id, ctrls, path, ok := splitCgroupLine(line)
		if !ok {
			if !haveLine {
				return "", nil, fmt.Errorf("bad line %q", line)
			}
			// Continuation of a path that held a newline.
			if lastV2 {
				v2 += "\n" + string(line)
			}
			for _, k := range lastKeys {
				v1[k] += "\n" + string(line)
			}
			continue
		}
		haveLine = true
		lastV2, lastKeys = false, lastKeys[:0]
		if id == 0 && len(ctrls) == 0 {
			v2, lastV2 = string(path), true
			continue
		}
		if v1 == nil {
			v1 = make(map[string]string)
		}
		p := string(path)
		for c := range bytes.SplitSeq(ctrls, []byte(",")) {
			k := string(c)
			v1[k] = p
			lastKeys = append(lastKeys, k)
		}
	}
	return v2, v1, nil
}

func splitCgroupLine(line []byte) (id uint64, ctrls, path []byte, ok bool) {
	idb, rest, ok := bytes.Cut(line, []byte(":"))
	if !ok {
		return 0, nil, nil, false
	}
	ctrls, path, ok = bytes.Cut(rest, []byte(":"))
	if !ok || len(idb) == 0 {
		return 0, nil, nil, false
	}
	id, err := strconv.ParseUint(string(idb), 10, 32)
	if err != nil {
		return 0, nil, nil, false
	}
	return id, ctrls, path, true
}

// parseCmdline joins the NUL-separated arguments of /proc/<pid>/cmdline with
// spaces and trims the result. Kernel threads have an empty cmdline.
func parseCmdline(b []byte) string {
	return string(bytes.TrimSpace(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
}

// parseBootTime returns the "btime" line of /proc/stat: the boot time in
// seconds since the epoch.
func parseBootTime(b []byte) (time.Time, error) {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("btime "))
		if !ok {
			continue
		}
		sec, err := strconv.ParseInt(string(bytes.TrimSpace(rest)), 10, 64)
		if err != nil || sec < 0 {
			return time.Time{}, fmt.Errorf("bad btime %q", bytes.TrimSpace(rest))
		}
		return time.Unix(sec, 0), nil
	}
	return time.Time{}, errors.New("no btime line")
}

// startTime converts a starttime in clock ticks since boot to wall time.
func startTime(boot time.Time, ticks uint64) time.Time {
	const tick = time.Second / userHZ
	return boot.Add(time.Duration(ticks/userHZ)*time.Second + time.Duration(ticks%userHZ)*tick)
}

// StartTicksFromBoottime converts a task's start time in nanoseconds since
// boot, as eBPF reads it from task_struct->start_boottime, into the clock
// ticks of /proc/<pid>/stat field 22, so the engine can pass it to
// [Resolver.Lookup]. (task_struct->start_time is monotonic and excludes
// suspend; it agrees only on a host that never slept.)
func StartTicksFromBoottime(ns uint64) uint64 {
	return ns / uint64(time.Second/userHZ)
}

// BoottimeFromStartTicks is the inverse of [StartTicksFromBoottime]: a
// /proc/<pid>/stat start time in clock ticks, as nanoseconds since boot.
func BoottimeFromStartTicks(ticks uint64) uint64 {
	return ticks * uint64(time.Second/userHZ)
}

// parseSocketLink returns the inode of an fd link target "socket:[12345]".
// It does not allocate.
func parseSocketLink(b []byte) (uint64, bool) {
	const prefix = "socket:["
	if len(b) < len(prefix)+2 || string(b[:len(prefix)]) != prefix || b[len(b)-1] != ']' {
		return 0, false
	}
	return parseDecimal(b[len(prefix) : len(b)-1])
}

// parseDecimal parses a non-empty run of ASCII digits that fits in a uint64
// without allocating.
func parseDecimal(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (^uint64(0)-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}
