package vnstat

import (
	"bytes"
	"context"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/history"
	"github.com/netmeter/netmeter/internal/testnet"
)

// The zone vnstatd and vnstat run in for the real-program test: UTC+05:45
// as a POSIX TZ string, which needs no tzdata. Read gets the same zone.
const realTZ = "<+0545>-05:45"

// vnstatdUpdate is the UpdateInterval (seconds) of the test's vnstatd.
const vnstatdUpdate = 2

// TestVnStatdDatabase is the ground truth: vnStat's own daemon monitors one
// end of a quiet veth while a known amount of TCP traffic crosses it, is
// stopped (SIGTERM writes its cache), and then Read must return exactly
// what `vnstat --json` reports for that database (names, alias, created,
// updated, totals and every row of every table, byte for byte), the totals
// must equal the kernel's counters of the link, and the times must be the
// real ones. Once with a rollback-journal database and once in WAL mode.
func TestVnStatdDatabase(t *testing.T) {
	for _, wal := range []bool{false, true} {
		name := "journal"
		if wal {
			name = "wal"
		}
		t.Run(name, func(t *testing.T) { testVnStatd(t, wal) })
	}
}

func testVnStatd(t *testing.T, wal bool) {
	vnstat, vnstatd := requireVnStat(t)
	p := testnet.NewPair(t, testnet.WithoutIPv6()) // fails or skips unless root
	loc := kathmandu

	dir := t.TempDir()
	dbdir := filepath.Join(dir, "db")
	dbpath := filepath.Join(dbdir, "vnstat.db")
	conf := filepath.Join(dir, "vnstat.conf")
	walSetting := "0"
	if wal {
		walSetting = "1"
	}
	// Short intervals; no log file, pid file, disk check, bandwidth probe or
	// clock-sync wait; everything else is vnStat's default.
	cfg := strings.Join([]string{
		`DatabaseDir "` + dbdir + `"`,
		"UseLogging 0",
		"PollInterval 2",
		"UpdateInterval " + strconv.Itoa(vnstatdUpdate),
		"SaveInterval 1",
		"OfflineSaveInterval 1",
		"TimeSyncWait 0",
		"BandwidthDetection 0",
		"CheckDiskSpace 0",
		"UpdateFileOwner 0",
		"DatabaseWriteAheadLogging " + walSetting,
		"",
	}, "\n")
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "TZ="+realTZ, "LC_ALL=C")

	kernelBefore, err := p.A.LinkCounters(testnet.PairLinkA)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Truncate(time.Second)

	// vnstatd in namespace A sees only lo and nmt-a, and adds nmt-a.
	daemon := exec.Command(vnstatd, "-n", "--config", conf)
	daemon.Env = env
	var out syncBuffer
	daemon.Stdout, daemon.Stderr = &out, &out
	if err := p.A.Start(daemon); err != nil {
		t.Fatalf("start vnstatd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	running := true
	t.Cleanup(func() {
		if running {
			daemon.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(out.String(), "Monitoring (1): "+testnet.PairLinkA) {
		select {
		case err := <-exited:
			running = false
			t.Fatalf("vnstatd exited (%v):\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("vnstatd did not start monitoring %s:\n%s", testnet.PairLinkA, out.String())
		}
	}

	// Known traffic both ways: 3 MiB B→A (nmt-a's rx), 1 MiB A→B (its tx).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	send := func(from, to *testnet.Netns, addr netip.Addr, n int64) {
		t.Helper()
		ln, err := to.ListenTCP(ctx, "tcp4", netip.AddrPortFrom(addr, 0).String())
		if err != nil {
			t.Fatal(err)
		}
		srv := testnet.ServeTCP(ln)
		defer srv.Close()
		if _, err := testnet.SendTCP(ctx, from.Dial, ln.Addr().String(), n, 1); err != nil {
			t.Fatal(err)
		}
	}
	const rxPayload, txPayload = 3 << 20, 1 << 20
	send(p.B, p.A, p.A4, rxPayload)
	send(p.A, p.B, p.B4, txPayload)

	// Let vnstatd poll the counters after the traffic, then read the
	// database while it runs (vnStat's users import while it runs).
	time.Sleep(2*vnstatdUpdate*time.Second + time.Second)
	namesBefore := fileNames(t, dbdir)
	if _, err := Read(dbpath, WithLocation(loc)); err != nil {
		t.Errorf("Read while vnstatd runs: %v", err)
	}
	if names := fileNames(t, dbdir); !slices.Equal(names, namesBefore) {
		t.Errorf("Read while vnstatd runs: files %v, before %v", names, namesBefore)
	}

	// SIGTERM: vnstatd writes its cache and exits.
	if err := daemon.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		running = false
		if err != nil {
			t.Fatalf("vnstatd: %v\n%s", err, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("vnstatd did not exit on SIGTERM:\n%s", out.String())
	}
	end := time.Now()
	kernelAfter, err := p.A.LinkCounters(testnet.PairLinkA)
	if err != nil {
		t.Fatal(err)
	}
	kernelRx := kernelAfter.RxBytes - kernelBefore.RxBytes
	kernelTx := kernelAfter.TxBytes - kernelBefore.TxBytes

	// An alias with characters that need escaping in HTML and XML. Not '"':
	// vnStat 2.10's --json writes it unescaped, which is not JSON.
	const alias = `up<link> & 'x'`
	setAlias := exec.Command(vnstat, "--config", conf, "-i", testnet.PairLinkA, "--setalias", alias)
	setAlias.Env = env
	if b, err := setAlias.CombinedOutput(); err != nil {
		t.Fatalf("vnstat --setalias: %v\n%s", err, b)
	}

	files := dirState(t, dbdir)
	d, err := Read(dbpath, WithLocation(loc))
	if err != nil {
		t.Fatal(err)
	}
	if after := dirState(t, dbdir); !maps.Equal(files, after) {
		t.Errorf("Read changed %s", dbdir)
	}
	if len(d.Interfaces) != 1 {
		t.Fatalf("interfaces: %+v", d.Interfaces)
	}
	got := d.Interfaces[0]
	if got.Name != testnet.PairLinkA || got.Alias != alias {
		t.Errorf("name %q alias %q, want %q %q", got.Name, got.Alias, testnet.PairLinkA, alias)
	}

	// 1. The totals are the kernel's counters of the link.
	t.Logf("vnStat %s: rx %d tx %d bytes; kernel rx %d tx %d; payload %d/%d", d.VnStatVersion, got.Rx, got.Tx, kernelRx, kernelTx, rxPayload, txPayload)
	if got.Rx != kernelRx || got.Tx != kernelTx {
		t.Errorf("totals rx %d tx %d, kernel counted rx %d tx %d", got.Rx, got.Tx, kernelRx, kernelTx)
	}
	if got.Rx < rxPayload || got.Tx < txPayload {
		t.Errorf("totals rx %d tx %d below the payload %d/%d", got.Rx, got.Tx, rxPayload, txPayload)
	}

	// 2. The times are real: created and the rows fall inside the test.
	if got.Created.Before(start) || got.Created.After(end) || got.Updated.Before(got.Created) || got.Updated.After(end) {
		t.Errorf("created %v updated %v, test ran %v to %v", got.Created, got.Updated, start, end)
	}
	for _, tab := range Tables {
		rows := got.Rows(tab)
		if len(rows) == 0 {
			t.Errorf("%s: no rows", tab)
		}
		var rx, tx uint64
		for _, r := range rows {
			rx, tx = rx+r.Rx, tx+r.Tx
			if period := periodOf(tab, start.In(loc)); r.Time.Before(period) || r.Time.After(end) {
				t.Errorf("%s row at %v: the test ran from %v (period start %v) to %v", tab, r.Time, start, period, end)
			}
		}
		// A new database: every table holds all its traffic.
		if rx != got.Rx || tx != got.Tx {
			t.Errorf("%s rows sum to rx %d tx %d, totals %d %d", tab, rx, tx, got.Rx, got.Tx)
		}
	}

	// 3. Exactly what vnStat itself reports, for the full JSON and each mode.
	full := runVnStatJSON(t, vnstat, realTZ, "--config", conf, "--json", "--limit", "0")
	if len(full.Interfaces) != 1 {
		t.Fatalf("vnstat --json: %d interfaces", len(full.Interfaces))
	}
	v := full.Interfaces[0]
	if v.Name != got.Name || v.Alias != got.Alias || v.Traffic.Total.Rx != got.Rx || v.Traffic.Total.Tx != got.Tx ||
		v.Created.Timestamp != got.Created.Unix() || v.Updated.Timestamp != got.Updated.Unix() {
		t.Errorf("vnstat --json: %q %q rx %d tx %d created %d updated %d; Read: %q %q rx %d tx %d created %d updated %d",
			v.Name, v.Alias, v.Traffic.Total.Rx, v.Traffic.Total.Tx, v.Created.Timestamp, v.Updated.Timestamp,
			got.Name, got.Alias, got.Rx, got.Tx, got.Created.Unix(), got.Updated.Unix())
	}
	modes := map[Table]string{FiveMinute: "f", Hour: "h", Day: "d", Month: "m", Year: "y", Top: "t"}
	compared := 0
	for _, tab := range Tables {
		one := runVnStatJSON(t, vnstat, realTZ, "--config", conf, "--json", modes[tab], "0")
		for name, j := range map[string]*vnJSON{"--json": full, "--json " + modes[tab]: one} {
			want, ours := j.rowsOf(0, tab), ourRows(got.Rows(tab))
			if !slices.Equal(want, ours) {
				t.Errorf("%s, %s: vnstat %+v, Read %+v", name, tab, want, ours)
			}
			compared += len(want)
		}
		if rs := got.Rows(tab); len(rs) > 0 {
			t.Logf("%s: %d rows equal to vnstat's, the first %v rx %d tx %d", tab, len(rs), rs[0].Time, rs[0].Rx, rs[0].Tx)
		}
	}
	t.Logf("%d rows compared with vnstat --json", compared)

	// 4. netmeter import vnstat: the store, read back, gives vnStat's own
	// --json totals and its day/month/year rows.
	st := openStore(t, loc, time.Now())
	res, err := Import(st, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	for tab, sr := range map[Table]history.Resolution{Hour: history.ResHour, Day: history.ResDay, Month: history.ResMonth, Year: history.ResYear} {
		rows := storeRows(t, st, got.Name, sr)
		var rx, tx uint64
		for _, r := range rows {
			rx, tx = rx+r[0], tx+r[1]
		}
		if rx != v.Traffic.Total.Rx || tx != v.Traffic.Total.Tx {
			t.Errorf("imported %s rows sum to rx %d tx %d; vnstat --json totals rx %d tx %d", sr, rx, tx, v.Traffic.Total.Rx, v.Traffic.Total.Tx)
		}
		for _, r := range got.Rows(tab) {
			if tab == Hour {
				break // the store's hours are UTC hours; this test's zone is UTC+05:45
			}
			if g := rows[r.Time.UTC()]; g != [2]uint64{r.Rx, r.Tx} {
				t.Errorf("imported %s %v: %v, vnStat %d/%d", sr, r.Time, g, r.Rx, r.Tx)
			}
		}
	}
	t.Logf("imported %+v", res)
}

// periodOf returns the start of tab's period that contains t.
func periodOf(tab Table, t time.Time) time.Time {
	y, m, d := t.Date()
	switch tab {
	case FiveMinute:
		return t.Truncate(5 * time.Minute)
	case Hour:
		return time.Date(y, m, d, t.Hour(), 0, 0, 0, t.Location())
	case Day, Top:
		return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
	case Month:
		return time.Date(y, m, 1, 0, 0, 0, 0, t.Location())
	}
	return time.Date(y, 1, 1, 0, 0, 0, 0, t.Location())
}

func fileNames(t testing.TB, dir string) []string {
	t.Helper()
	var n []string
	for name := range dirState(t, dir) {
		n = append(n, name)
	}
	slices.Sort(n)
	return n
}

// syncBuffer collects a child's output for concurrent reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
