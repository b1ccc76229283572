package containertest

import (
	"os"
	"sync"
	"testing"

	"github.com/netmeter/netmeter/internal/testnet"
)

// keepDaemons is set by Main: daemons then live until the package's tests end.
var (
	keepMu      sync.Mutex
	keepDaemons bool
)

// Main is for TestMain: func TestMain(m *testing.M) { containertest.Main(m) }.
// It keeps the daemons the tests start (dockerd, podman's API services) until
// all tests of the package have run, then stops them and removes what they
// made. In a child started by internal/testnet's Command it runs the child's
// role instead, like testnet.Main, so it replaces testnet.Main.
func Main(m *testing.M) {
	if os.Getenv(testnet.EnvRole) != "" {
		testnet.Main(m) // runs the role and exits
	}
	keepMu.Lock()
	keepDaemons = true
	keepMu.Unlock()
	code := m.Run()
	shutdownAll()
	os.Exit(code)
}

// shared is a daemon that tests share: started by the first test that asks,
// stopped when the last reference goes (or at the end of Main).
type shared[T any] struct {
	mu   sync.Mutex
	inst *T
	refs int
	stop func(logf func(string, ...any))
}

var (
	sharedMu   sync.Mutex
	sharedStop []func()
)

// acquire returns the shared instance, starting it with start if needed, and
// registers the release of t's reference with t.Cleanup.
func (s *shared[T]) acquire(t testing.TB, start func() (*T, func(logf func(string, ...any)), error)) *T {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inst == nil {
		inst, stop, err := start()
		if err != nil {
			t.Fatal(err)
		}
		s.inst, s.stop = inst, stop
		sharedMu.Lock()
		sharedStop = append(sharedStop, func() { s.shutdown(nil) })
		sharedMu.Unlock()
	}
	s.refs++
	inst := s.inst
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.refs--
		keepMu.Lock()
		keep := keepDaemons
		keepMu.Unlock()
		if s.refs == 0 && !keep && s.inst == inst {
			s.stopLocked(t.Logf)
		}
	})
	return inst
}

func (s *shared[T]) shutdown(logf func(string, ...any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inst != nil {
		s.stopLocked(logf)
	}
}

func (s *shared[T]) stopLocked(logf func(string, ...any)) {
	if logf == nil {
		logf = func(format string, args ...any) {
			os.Stderr.WriteString("containertest: ")
			_, _ = os.Stderr.WriteString(sprintf(format, args...) + "\n")
		}
	}
	s.stop(logf)
	s.inst, s.stop = nil, nil
}

// shutdownAll stops every shared daemon still running.
func shutdownAll() {
	sharedMu.Lock()
	stops := sharedStop
	sharedStop = nil
	sharedMu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
}

// made records what this process created on the host (daemon directories,
// bridges, container ids, namespaces), so a leftover check can tell it from
// what concurrent test processes make.
var made struct {
	sync.Mutex
	items []string
}

func track(item string) {
	made.Lock()
	made.items = append(made.items, item)
	made.Unlock()
}

func tracked() []string {
	made.Lock()
	defer made.Unlock()
	return append([]string(nil), made.items...)
}
