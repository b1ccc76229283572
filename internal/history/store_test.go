package history

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOpenCreatesSchemaAndReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	s, err := Open(Options{Path: path, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := s.w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	var sync int
	if err := s.w.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil || sync != 2 {
		t.Errorf("synchronous = %d, %v; want 2 (FULL: a Record is durable when it returns)", sync, err)
	}
	var v int
	if err := s.r.QueryRow("SELECT value FROM meta WHERE key = 'schema_version'").Scan(&v); err != nil || v != len(migrations) {
		t.Errorf("schema_version = %d, %v; want %d", v, err, len(migrations))
	}
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	if err := s.Record(at, map[Entity]Counters{eth0: {1, 2, 3, 4}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, Options{Path: path, Location: time.UTC})
	rows := mustQuery(t, s, Query{Entities: []Entity{eth0}, Resolution: ResYear})
	if len(rows) != 1 || rows[0].Counters != (Counters{1, 2, 3, 4}) {
		t.Errorf("after reopening: %+v", rows)
	}
	if err := s.Check(); err != nil {
		t.Error(err)
	}
}

func TestOpenMissingDirectory(t *testing.T) {
	_, err := Open(Options{Path: filepath.Join(t.TempDir(), "nope", "history.db")})
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Open in a missing directory: %v", err)
	}
}

// assertUntouched fails unless path still holds want and nothing was
// created next to it.
func assertUntouched(t *testing.T, path string, want []byte, mtime time.Time) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s was modified", path)
	}
	if fi, err := os.Stat(path); err != nil || !fi.ModTime().Equal(mtime) {
		t.Errorf("%s: mtime changed (%v)", path, err)
	}
	for _, suffix := range []string{"-wal", "-journal"} {
		if fi, err := os.Stat(path + suffix); err == nil && fi.Size() > 0 {
			t.Errorf("%s%s created with %d bytes", path, suffix, fi.Size())
		}
	}
}

func TestOpenCorruptFileIsLeftUntouched(t *testing.T) {
	random := make([]byte, 64<<10)
	rand.Read(random)
	page := make([]byte, 8192)
	rand.Read(page)
	fakeHeader := append([]byte(sqliteMagic), page...) // the magic, then garbage
	for name, content := range map[string][]byte{
		"random bytes":      random,
		"short text":        []byte("hello, this is not a database\n"),
		"SQLite magic only": fakeHeader,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "history.db")
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			old := time.Now().Add(-time.Hour).Truncate(time.Second)
			if err := os.Chtimes(path, old, old); err != nil {
				t.Fatal(err)
			}
			s, err := Open(Options{Path: path})
			if err == nil {
				s.Close()
				t.Fatal("Open accepted a corrupt file")
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("error does not wrap ErrCorrupt: %v", err)
			}
			if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "left untouched") {
				t.Errorf("error should name the file and say it was left untouched: %v", err)
			}
			assertUntouched(t, path, content, old)
		})
	}
}

// A damaged page deep in a real store: Check finds it.
func TestCheckFindsDamage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	s, err := Open(Options{Path: path, Location: time.UTC, Retention: keepAll})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 60 {
		d := map[Entity]Counters{}
		for j := range 20 {
			d[Entity{KindProcess, strings.Repeat("p", 50) + string(rune('a'+j))}] = Counters{RxBytes: uint64(i)}
		}
		mustRecord(t, s, at.Add(time.Duration(i)*time.Hour), d)
	}
	if _, err := s.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 8*4096 {
		t.Fatalf("store only %d bytes", len(b))
	}
	for i := 4 * 4096; i < len(b)-4096; i += 4096 {
		copy(b[i+100:i+4000], bytes.Repeat([]byte{0xA5}, 3900))
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Options{Path: path, Location: time.UTC})
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open of a damaged store: %v, want ErrCorrupt", err)
		}
		return
	}
	defer s.Close()
	if err := s.Check(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Check of a damaged store = %v, want ErrCorrupt", err)
	}
}

func TestOpenForeignDatabaseIsLeftUntouched(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE songs (title TEXT); INSERT INTO songs VALUES ('x')"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	content, _ := os.ReadFile(path)
	fi, _ := os.Stat(path)
	s, err := Open(Options{Path: path})
	if err == nil {
		s.Close()
		t.Fatal("Open took over another program's database")
	}
	if !strings.Contains(err.Error(), "another program") || !strings.Contains(err.Error(), "left untouched") {
		t.Errorf("error: %v", err)
	}
	assertUntouched(t, path, content, fi.ModTime())
}

func TestOpenNewerSchemaIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	s := openTest(t, Options{Path: path})
	if _, err := s.w.Exec("UPDATE meta SET value = 99 WHERE key = 'schema_version'"); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Options{Path: path})
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of schema 99: %v", err)
	}
}

// The path goes to SQLite as a file: URI: odd characters must survive.
func TestOpenOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir?with#odd%20chars")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "history.db")
	s := openTest(t, Options{Path: path})
	mustRecord(t, s, time.Now(), map[Entity]Counters{eth0: {RxBytes: 1}})
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Errorf("database not at %s: %v", path, err)
	}
	if s.Path() != path {
		t.Errorf("Path() = %q", s.Path())
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "history.db") {
			t.Errorf("stray file %q", e.Name())
		}
	}
}
