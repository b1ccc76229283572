package testnet

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Environment variables of the child-process protocol between [Command] and
// [Main].
const (
	// EnvRole names the role the re-executed test binary runs.
	EnvRole = "NETMETER_TESTNET_ROLE"
	// EnvNetns is the namespace path the child enters before its role runs.
	EnvNetns = "NETMETER_TESTNET_NETNS"
	// EnvTimeout bounds the role's run time (a time.ParseDuration string).
	EnvTimeout = "NETMETER_TESTNET_TIMEOUT"
)

// DefaultChildTimeout bounds a child role when the test has no deadline.
const DefaultChildTimeout = 2 * time.Minute

// RoleFunc is the body of a child role. args are the arguments given to
// [Command]; ctx ends at the role's timeout or on SIGTERM/SIGINT. The role
// reports through rep: it must call rep.Ready once it is ready (listening,
// for a server) and may call rep.Result. A returned error is reported as an
// "error" event and exits with status 1.
type RoleFunc func(ctx context.Context, args []string, rep *Reporter) error

var (
	rolesMu sync.Mutex
	roles   = map[string]RoleFunc{}
)

// RegisterRole makes fn runnable as a child role called name. Call it from
// an init function or TestMain before [Main]. It panics if name is taken.
func RegisterRole(name string, fn RoleFunc) {
	rolesMu.Lock()
	defer rolesMu.Unlock()
	if _, dup := roles[name]; dup {
		panic("testnet: role " + name + " registered twice")
	}
	roles[name] = fn
}

// Roles returns the names of the registered roles, sorted.
func Roles() []string {
	rolesMu.Lock()
	defer rolesMu.Unlock()
	names := make([]string, 0, len(roles))
	for n := range roles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Main is for TestMain: func TestMain(m *testing.M) { testnet.Main(m) }.
// In a process started by [Command] it runs the requested role and exits;
// otherwise it runs the tests and exits with their status.
func Main(m *testing.M) {
	if role := os.Getenv(EnvRole); role != "" {
		os.Exit(runRole(role, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// Command returns a command that runs role as a child process: the test
// binary re-executed (so the package's TestMain must call [Main]). If cg is
// not nil the child starts in it (clone3 CLONE_INTO_CGROUP, so it never runs
// outside it). If ns is not nil the child enters it before its role runs:
// it switches its first thread into ns and re-executes itself from there, so
// every thread of the role lives in ns. The child is killed when the test
// ends if it still runs. Start it with [StartChild] to read its reports.
func Command(t testing.TB, ns *Netns, cg *Cgroup, role string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("find test binary: %v", err)
	}
	cmd := exec.CommandContext(t.Context(), exe, args...)
	timeout := DefaultChildTimeout
	if dt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if d, ok := dt.Deadline(); ok {
			timeout = time.Until(d)
		}
	}
	cmd.Env = append(os.Environ(), EnvRole+"="+role, EnvTimeout+"="+timeout.String())
	if ns != nil {
		cmd.Env = append(cmd.Env, EnvNetns+"="+ns.Path())
	}
	// Pdeathsig kills the child if the test binary dies without cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if cg != nil {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = cg.FD()
	}
	cmd.WaitDelay = 5 * time.Second
	t.Cleanup(func() {
		if cmd.Process != nil && cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

func runRole(role string, args []string) int {
	if path := os.Getenv(EnvNetns); path != "" {
		err := reexecInNetns(path)
		fmt.Fprintf(os.Stderr, "testnet child: enter netns %s: %v\n", path, err)
		return 2
	}
	rep := &Reporter{w: os.Stdout}
	rolesMu.Lock()
	fn := roles[role]
	rolesMu.Unlock()
	if fn == nil {
		rep.emit(Report{Event: "error", Error: fmt.Sprintf("unknown role %q (registered: %s)", role, strings.Join(Roles(), ", "))})
		return 2
	}
	timeout := DefaultChildTimeout
	if s := os.Getenv(EnvTimeout); s != "" {
		if d, err := time.ParseDuration(s); err == nil && d > 0 {
			timeout = d
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := fn(ctx, args, rep); err != nil {
		rep.emit(Report{Event: "error", Error: err.Error()})
		return 1
	}
	return 0
}

// reexecInNetns switches this thread into the namespace at path and
// re-executes the binary from it, so the new image runs wholly in the
// namespace. It returns only on failure.
func reexecInNetns(path string) error {
	runtime.LockOSThread() // never unlocked: this thread execs or the process exits
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return err
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvNetns+"=") {
			env = append(env, kv)
		}
	}
	return unix.Exec("/proc/self/exe", os.Args, env)
}

// Report is one JSON line a child role writes to its stdout.
type Report struct {
	// Event is "ready", "result" or "error".
	Event string `json:"event"`
	// Pid is the child's process id.
	Pid int `json:"pid,omitempty"`
	// NetnsInode is the inode of the child's network namespace.
	NetnsInode uint64 `json:"netns_inode,omitempty"`
	// Cgroup is the child's cgroup v2 path (the "0::" line of
	// /proc/self/cgroup).
	Cgroup string `json:"cgroup,omitempty"`
	// Addr is, in a server's "ready" event, the address it listens on.
	Addr string `json:"addr,omitempty"`
	// Result is the payload of a "result" event.
	Result *Result `json:"result,omitempty"`
	// Error is the message of an "error" event.
	Error string `json:"error,omitempty"`
}

// Reporter writes a child role's [Report]s.
type Reporter struct {
	mu sync.Mutex
	w  io.Writer
}

// Ready reports that the role is ready, with its pid, namespace and cgroup,
// and addr if it is a server.
func (r *Reporter) Ready(addr string) {
	rep := Report{Event: "ready", Pid: os.Getpid(), Addr: addr}
	var st unix.Stat_t
	if unix.Stat("/proc/self/ns/net", &st) == nil {
		rep.NetnsInode = st.Ino
	}
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if p, ok := strings.CutPrefix(line, "0::"); ok {
				rep.Cgroup = p
			}
		}
	}
	r.emit(rep)
}

// Result reports what the role did.
func (r *Reporter) Result(res Result) { r.emit(Report{Event: "result", Result: &res}) }

func (r *Reporter) emit(rep Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, _ := json.Marshal(rep)
	b = append(b, '\n')
	_, _ = r.w.Write(b)
}

// Child is a started child role whose reports are being read.
type Child struct {
	// Cmd is the running command.
	Cmd *exec.Cmd

	stderr  *syncWriter
	readyCh chan struct{} // closed at the first "ready" report
	eof     chan struct{} // closed when stdout is drained

	mu      sync.Mutex
	ready   Report
	reports []Report // "result" and "error" events
	waitErr error
	waited  bool
}

// StartChild starts cmd (from [Command]) and reads its reports. Its stdout
// must be unset; its stderr, if unset, is kept for error messages. It fails
// t if the child cannot start.
func StartChild(t testing.TB, cmd *exec.Cmd) *Child {
	t.Helper()
	c := &Child{Cmd: cmd, readyCh: make(chan struct{}), eof: make(chan struct{})}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("child stdout: %v", err)
	}
	if cmd.Stderr == nil {
		c.stderr = &syncWriter{}
		cmd.Stderr = c.stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child %s: %v", cmd, err)
	}
	go c.read(out)
	return c
}

type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (c *Child) read(r io.Reader) {
	defer close(c.eof)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	gotReady := false
	for sc.Scan() {
		var rep Report
		if err := json.Unmarshal(sc.Bytes(), &rep); err != nil || rep.Event == "" {
			continue // not a report: the role printed something else
		}
		c.mu.Lock()
		if rep.Event == "ready" {
			if !gotReady {
				gotReady = true
				c.ready = rep
				close(c.readyCh)
			}
		} else {
			c.reports = append(c.reports, rep)
		}
		c.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r)
}

// Pid returns the child's process id.
func (c *Child) Pid() int { return c.Cmd.Process.Pid }

// Ready waits for the child's "ready" report.
func (c *Child) Ready(ctx context.Context) (Report, error) {
	select {
	case <-c.readyCh:
	case <-c.eof:
		select {
		case <-c.readyCh:
		default:
			_, err := c.Wait(ctx)
			return Report{}, fmt.Errorf("child exited before it was ready: %w", err)
		}
	case <-ctx.Done():
		return Report{}, fmt.Errorf("child not ready: %w", ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ready, nil
}

// Wait waits for the child to exit and returns its last "result" report. It
// fails if the child reported an error, exited non-zero or ctx ended (the
// child is then killed).
func (c *Child) Wait(ctx context.Context) (Result, error) {
	var errs []error
	select {
	case <-c.eof:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("child killed: %w", ctx.Err()))
		_ = c.Cmd.Process.Kill()
		<-c.eof
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.waited {
		c.waited = true
		c.waitErr = c.Cmd.Wait()
	}
	var res *Result
	for _, rep := range c.reports {
		if rep.Event == "error" {
			errs = append(errs, errors.New(rep.Error))
		} else if rep.Result != nil {
			res = rep.Result
		}
	}
	if c.waitErr != nil {
		msg := ""
		if c.stderr != nil && c.stderr.String() != "" {
			msg = "; stderr: " + strings.TrimSpace(c.stderr.String())
		}
		errs = append(errs, fmt.Errorf("child: %w%s", c.waitErr, msg))
	}
	if err := errors.Join(errs...); err != nil {
		return Result{}, err
	}
	if res == nil {
		return Result{}, errors.New("child exited without a result")
	}
	return *res, nil
}
