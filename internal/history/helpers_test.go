package history

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestMain runs the roles of the subprocess tests (a writer killed with
// SIGKILL, a reader in another process) and removes the benchmark store.
func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case roleCrashWriter:
		crashWriter()
		return
	case roleReader:
		readerProcess()
		return
	}
	code := m.Run()
	cleanupBenchStore()
	os.Exit(code)
}

const (
	roleEnv         = "NETMETER_HISTORY_TEST_ROLE"
	dbEnv           = "NETMETER_HISTORY_TEST_DB"
	roleCrashWriter = "crash-writer"
	roleReader      = "reader"
)

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// keepAll keeps every resolution forever: totals tests are not about
// retention.
var keepAll = Retention{FiveMin: -1, Hour: -1, Days: -1, Weeks: -1, Months: -1, Years: -1, TopDays: -1}

// openTest opens a store in a fresh temporary directory (unless opt.Path is
// set) and closes it when the test ends.
func openTest(t testing.TB, opt Options) *Store {
	t.Helper()
	if opt.Path == "" {
		opt.Path = filepath.Join(t.TempDir(), "history.db")
	}
	s, err := Open(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func berlin(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tzdata for Europe/Berlin:", err)
	}
	return loc
}

func mustRecord(t testing.TB, s *Store, at time.Time, d map[Entity]Counters) {
	t.Helper()
	if err := s.Record(at, d); err != nil {
		t.Fatal(err)
	}
}

func mustQuery(t testing.TB, s *Store, q Query) []Row {
	t.Helper()
	rows, err := s.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func sumRows(rows []Row) Counters {
	var c Counters
	for _, r := range rows {
		c = c.add(r.Counters)
	}
	return c
}

func (c Counters) add(d Counters) Counters {
	return Counters{c.RxBytes + d.RxBytes, c.TxBytes + d.TxBytes, c.RxPackets + d.RxPackets, c.TxPackets + d.TxPackets}
}

var (
	eth0 = Entity{KindInterface, "eth0"}
	eth1 = Entity{KindInterface, "eth1"}
)
