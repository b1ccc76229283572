package testnet

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netmeter/netmeter/internal/nsutil"
)

// CgroupParent is the directory, under the cgroup2 mount, that holds the
// cgroups [NewCgroup] creates. It is removed when the last one goes.
const CgroupParent = "netmeter-test"

// Cgroup2Mount returns the mount point of the cgroup v2 hierarchy, read from
// /proc/self/mountinfo: /sys/fs/cgroup on a unified host,
// /sys/fs/cgroup/unified on a hybrid one.
func Cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	return parseCgroup2Mount(f)
}

func parseCgroup2Mount(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// 41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) >= 5 && len(qf) >= 1 && qf[0] == "cgroup2" {
			return nsutil.UnescapeMountinfo(pf[4]), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read mountinfo: %w", err)
	}
	return "", errors.New("no cgroup2 mount in /proc/self/mountinfo")
}

// Cgroup is a fresh cgroup v2 directory for one test, under
// <cgroup2 mount>/netmeter-test/. Its cleanup kills every process left in
// it (cgroup.kill) and removes it.
type Cgroup struct {
	// Path is the cgroup's directory, like
	// /sys/fs/cgroup/unified/netmeter-test/1a2b3c4d.
	Path string

	id uint64
	fd *os.File
}

// NewCgroup creates a fresh cgroup and registers its removal with
// t.Cleanup. It fails t on error.
func NewCgroup(t testing.TB) *Cgroup {
	t.Helper()
	RequirePrivileged(t)
	mnt, err := Cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	parent := filepath.Join(mnt, CgroupParent)
	cg := &Cgroup{}
	// Another test process may remove the parent between our mkdirs.
	for try := 0; ; try++ {
		if err := os.Mkdir(parent, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			t.Fatalf("create cgroup: %v", err)
		}
		cg.Path = filepath.Join(parent, randHex(4))
		err := os.Mkdir(cg.Path, 0o755)
		if err == nil {
			break
		}
		if try == 5 || !errors.Is(err, os.ErrNotExist) && !errors.Is(err, os.ErrExist) {
			t.Fatalf("create cgroup: %v", err)
		}
	}
	t.Cleanup(func() { cg.destroy(t) })

	fd, err := os.OpenFile(cg.Path, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open cgroup: %v", err)
	}
	cg.fd = fd
	var st unix.Stat_t
	if err := unix.Fstat(int(fd.Fd()), &st); err != nil {
		t.Fatalf("stat cgroup: %v", err)
	}
	cg.id = st.Ino
	return cg
}

// ID returns the cgroup id: the inode number of its directory, which is the
// value bpf_get_current_cgroup_id and bpf_skb_cgroup_id return for it.
func (cg *Cgroup) ID() uint64 { return cg.id }

// FD returns an open descriptor of the cgroup directory, for
// syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cg.FD()} or for attaching
// BPF programs. It belongs to cg: do not close it.
func (cg *Cgroup) FD() int { return int(cg.fd.Fd()) }

// Rel returns the cgroup's path relative to the cgroup2 mount, with a leading
// slash, as in the "0::" line of /proc/<pid>/cgroup.
func (cg *Cgroup) Rel() string {
	mnt, err := Cgroup2Mount()
	if err != nil {
		return ""
	}
	rel, err := filepath.Rel(mnt, cg.Path)
	if err != nil {
		return ""
	}
	return "/" + rel
}

// AddProc moves the process pid into the cgroup.
func (cg *Cgroup) AddProc(pid int) error {
	return os.WriteFile(filepath.Join(cg.Path, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
}

// Procs returns the pids in the cgroup (cgroup.procs).
func (cg *Cgroup) Procs() ([]int, error) {
	b, err := os.ReadFile(filepath.Join(cg.Path, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for f := range strings.FieldsSeq(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("parse %s/cgroup.procs: %w", cg.Path, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// Kill kills every process in the cgroup (cgroup.kill) and waits, up to five
// seconds, until it is empty.
func (cg *Cgroup) Kill() error {
	if err := os.WriteFile(filepath.Join(cg.Path, "cgroup.kill"), []byte("1"), 0); err != nil {
		return fmt.Errorf("kill cgroup %s: %w", cg.Path, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(cg.Path, "cgroup.events"))
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "populated 0") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s still populated 5s after cgroup.kill", cg.Path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (cg *Cgroup) destroy(t testing.TB) {
	if cg.fd != nil {
		cg.fd.Close()
	}
	if _, err := os.Stat(cg.Path); errors.Is(err, os.ErrNotExist) {
		t.Logf("cgroup %s already gone", cg.Path)
		return
	}
	if err := cg.Kill(); err != nil {
		t.Errorf("%v", err)
	}
	// rmdir can briefly fail with EBUSY while killed tasks are reaped.
	var err error
	for range 100 {
		if err = unix.Rmdir(cg.Path); err == nil || !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("remove cgroup %s: %v", cg.Path, err)
	}
	// Remove the shared parent if this was its last child; other tests may
	// still use it (ENOTEMPTY/EBUSY) or have removed it already (ENOENT).
	_ = unix.Rmdir(filepath.Dir(cg.Path))
}
