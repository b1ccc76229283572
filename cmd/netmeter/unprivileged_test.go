package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/netmeter/netmeter/internal/testnet"
)

// buildForNobody builds netmeter where the user nobody can run it and
// returns the binary and its directory; the test needs root to become nobody.
func buildForNobody(t *testing.T) (bin, dir string) {
	t.Helper()
	testnet.RequirePrivileged(t)
	dir = t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755) // nobody must reach the binary
	}
	bin = filepath.Join(dir, "netmeter")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin, dir
}

// TestUnprivilegedUser builds netmeter and runs it as nobody: interfaces
// work without privileges; top fails with exit 1 and says which capability is
// missing and how to get it.
func TestUnprivilegedUser(t *testing.T) {
	bin, dir := buildForNobody(t)
	run := func(args ...string) (string, string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"NETMETER_CONFIG=/dev/null", "PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, NoSetGroups: true}}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		code := 0
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String(), code
	}
	out, errOut, code := run("ifstat", "--interval", "50ms", "--interfaces", "lo")
	if code != 0 || !strings.Contains(out, "lo ") {
		t.Errorf("ifstat as nobody: exit %d\n%s%s", code, out, errOut)
	}
	_, errOut, code = run("top", "--once", "--interval", "50ms")
	t.Logf("top as nobody: exit %d: %s", code, errOut)
	if code != 1 {
		t.Errorf("top as nobody: exit %d, want 1", code)
	}
	for _, want := range []string{"CAP_BPF", "run as root or grant", "setcap", "--engine off"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("top's error does not say %q", want)
		}
	}
	// The agent as nobody: a data dir it cannot write, and the engine it
	// may not load, are clear errors with exit 1 — before anything is
	// collected, so nothing is lost.
	locked := filepath.Join(dir, "locked")
	os.Mkdir(locked, 0o700) // root's
	_, errOut, code = run("serve", "--engine", "off", "--listen", "127.0.0.1:0", "--data-dir", locked, "--state-file", locked+"/s.json")
	t.Logf("serve with an unwritable data dir: exit %d: %s", code, errOut)
	if code != 1 || !strings.Contains(errOut, "permission denied") || !strings.Contains(errOut, locked) {
		t.Errorf("serve with an unwritable --data-dir: exit %d, %q; want 1 naming the directory", code, errOut)
	}
	own := filepath.Join(dir, "own")
	os.Mkdir(own, 0o777)
	os.Chmod(own, 0o777) // past the umask
	_, errOut, code = run("serve", "--engine", "on", "--listen", "127.0.0.1:0", "--data-dir", own, "--state-file", own+"/s.json")
	t.Logf("serve --engine on as nobody: exit %d: %s", code, errOut)
	if code != 1 || !strings.Contains(errOut, "CAP_BPF") {
		t.Errorf("serve --engine on as nobody: exit %d, %q; want 1 naming CAP_BPF", code, errOut)
	}
	// Without a terminal, netmeter prints the interface table, which needs
	// no privileges.
	out, errOut, code = run("--interval", "50ms", "--interfaces", "lo")
	if code != 0 || !strings.Contains(out, "lo ") {
		t.Errorf("netmeter as nobody: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
}
