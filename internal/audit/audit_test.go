package audit

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/snapshot"
)

func conn(ck uint64, first time.Time, closed bool, tx uint64) snapshot.Connection {
	return snapshot.Connection{Cookie: ck, Proto: "tcp", FirstSeen: first, Closed: closed,
		Local: snapshot.Endpoint{Addr: "10.0.0.1", Port: 40000}, Remote: snapshot.Endpoint{Addr: "10.0.0.2", Port: 443},
		Owner: snapshot.Owner{PID: 42, Comm: "curl"}, Total: snapshot.Traffic{TxBytes: tx, TxPayload: tx / 2}}
}

func readEvents(t *testing.T, path string) []Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%v: %s", err, sc.Text())
		}
		out = append(out, e)
	}
	return out
}

func TestOpenClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	snap := func(at time.Time, cs ...snapshot.Connection) *snapshot.Snapshot {
		return &snapshot.Snapshot{Time: at, Interval: time.Second, Connections: cs}
	}
	ctr := func(pid int) string { return map[int]string{42: "web"}[pid] }
	steps := []*snapshot.Snapshot{
		snap(t0, conn(1, t0, false, 10)),
		snap(t0.Add(time.Second), conn(1, t0, false, 500)),
		snap(t0.Add(3*time.Second), conn(1, t0, true, 900), conn(2, t0.Add(2500*time.Millisecond), true, 77)),
		snap(t0.Add(4*time.Second), conn(1, t0, true, 900), conn(2, t0.Add(2500*time.Millisecond), true, 77)), // still listed
		snap(t0.Add(5*time.Second), conn(3, t0.Add(-time.Hour), true, 5)),                                     // closed before the log watched: ignored
	}
	for _, s := range steps {
		if err := l.Observe(s, ctr); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	ev := readEvents(t, path)
	want := []struct {
		kind string
		ck   uint64
		tx   uint64
		dur  int64
	}{{"open", 1, 0, 0}, {"open", 2, 0, 0}, {"close", 1, 900, 3000}, {"close", 2, 77, 500}}
	if len(ev) != len(want) {
		t.Fatalf("%d events, want %d: %+v", len(ev), len(want), ev)
	}
	// Opens and closes may interleave per connection; check by cookie.
	seen := map[string]Event{}
	for _, e := range ev {
		seen[e.Event+string(rune('0'+e.Cookie))] = e
	}
	for _, w := range want {
		e, ok := seen[w.kind+string(rune('0'+w.ck))]
		if !ok || e.TxBytes != w.tx || e.DurationMS != w.dur || e.Container != "web" || e.Comm != "curl" || e.Remote.Port != 443 {
			t.Errorf("%s %d: %+v, want tx %d duration %d ms, container web", w.kind, w.ck, e, w.tx, w.dur)
		}
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	l, err := Open(Options{Path: path, MaxBytes: 2000, Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for i := range 200 {
		s := &snapshot.Snapshot{Time: t0.Add(time.Duration(i) * time.Second), Interval: time.Second,
			Connections: []snapshot.Connection{conn(uint64(i+10), t0.Add(time.Duration(i)*time.Second), false, 1)}}
		if err := l.Observe(s, nil); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	for _, name := range []string{"audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if st.Size() > 2000 {
			t.Errorf("%s is %d bytes, over the 2000 limit", name, st.Size())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "audit.jsonl.3")); err == nil {
		t.Error("kept more than 2 old files")
	}
}

// A scan of 100,000 connections that never close: memory stays bounded.
func TestBounded(t *testing.T) {
	l, err := Open(Options{Path: filepath.Join(t.TempDir(), "a.jsonl"), MaxTracked: 1000, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t0 := time.Now()
	var cs []snapshot.Connection
	for i := range 100_000 {
		cs = append(cs, conn(uint64(i+1), t0, false, 0))
		if len(cs) == 10_000 {
			if err := l.Observe(&snapshot.Snapshot{Time: t0, Interval: time.Second, Connections: cs}, nil); err != nil {
				t.Fatal(err)
			}
			cs = cs[:0]
		}
	}
	if len(l.open) > 1000 || len(l.order) > 4*1000+10_000 || l.Dropped != 99_000 {
		t.Errorf("tracked %d, order %d, dropped %d; want ≤ 1000 tracked and 99000 dropped", len(l.open), len(l.order), l.Dropped)
	}
}
