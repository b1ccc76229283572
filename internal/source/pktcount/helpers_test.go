package pktcount

// Self-contained test harness: re-executes the test binary as a child role
// (selected by an environment variable) inside a test cgroup or as an
// unprivileged user. internal/testnet offers the same for later tests; this
// file keeps pktcount's tests independent of it.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/bpfload"
)

const (
	envRole              = "NETMETER_PKTCOUNT_TEST_ROLE"
	envRequirePrivileged = "NETMETER_REQUIRE_PRIVILEGED"
)

// roles run in the re-executed test binary; each prints one JSON report.
var roles = map[string]func() (any, error){}

func TestMain(m *testing.M) {
	if role := os.Getenv(envRole); role != "" {
		fn, ok := roles[role]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown role %q\n", role)
			os.Exit(2)
		}
		report, err := fn()
		if err != nil {
			fmt.Fprintf(os.Stderr, "role %s: %v\n", role, err)
			os.Exit(1)
		}
		if err := json.NewEncoder(os.Stdout).Encode(report); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// requirePrivileged skips t unless it runs as root, or fails it when
// NETMETER_REQUIRE_PRIVILEGED=1 (CI), so a kernel test never passes by skipping.
func requirePrivileged(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	const why = "needs root (euid 0) to load BPF and create cgroups"
	if os.Getenv(envRequirePrivileged) == "1" {
		t.Fatalf("%s; running as euid %d with %s=1", why, os.Geteuid(), envRequirePrivileged)
	}
	t.Skipf("%s; running as euid %d (set %s=1 to fail instead)", why, os.Geteuid(), envRequirePrivileged)
}

// testCgroup is a fresh cgroup2 directory removed when the test ends.
type testCgroup struct {
	path string
	dir  *os.File // open O_RDONLY|O_DIRECTORY, for SysProcAttr.CgroupFD
}

func newTestCgroup(t *testing.T) *testCgroup {
	t.Helper()
	mount, err := bpfload.Cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	path := filepath.Join(mount, "netmeter-test-"+hex.EncodeToString(b))
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatalf("create test cgroup: %v", err)
	}
	dir, err := os.Open(path)
	if err != nil {
		_ = os.Remove(path)
		t.Fatalf("open test cgroup: %v", err)
	}
	cg := &testCgroup{path: path, dir: dir}
	t.Cleanup(func() {
		if err := cg.remove(); err != nil {
			t.Errorf("remove test cgroup: %v", err)
		}
	})
	return cg
}

// remove kills what is left in the cgroup and removes it; idempotent.
func (cg *testCgroup) remove() error {
	if cg.dir != nil {
		cg.dir.Close()
		cg.dir = nil
	}
	if _, err := os.Stat(cg.path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	_ = os.WriteFile(filepath.Join(cg.path, "cgroup.kill"), []byte("1"), 0)
	var err error
	for range 50 { // a killed child leaves the cgroup asynchronously
		if err = os.Remove(cg.path); err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// child runs role in a re-executed test binary and decodes its JSON report
// into report. attr configures cgroup or credentials.
func child(t *testing.T, exe, role string, env []string, attr *syscall.SysProcAttr, report any) {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, envRole+"="+role)...)
	cmd.SysProcAttr = attr
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child %s: %v", role, err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("child %s: %v\nstderr: %s", role, err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("child %s: timed out\nstderr: %s", role, stderr.String())
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), report); err != nil {
		t.Fatalf("child %s: bad report %q: %v", role, strings.TrimSpace(stdout.String()), err)
	}
}

// worldExecutableCopy copies the test binary into a fresh 0755 directory so a
// child running as nobody can execute it (go test's build dir is 0700).
func worldExecutableCopy(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "netmeter-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := filepath.Join(dir, filepath.Base(self))
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, src); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}
