package history

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Kind is what an entity is.
type Kind string

// The kinds of entities the store keeps.
const (
	KindInterface Kind = "interface" // a network interface, by name (and namespace)
	KindProcess   Kind = "process"   // a program, by name
	KindContainer Kind = "container" // a container, by its stable name
	KindAccount   Kind = "account"   // a billing account
	KindGroup     Kind = "group"     // a user-defined group of remote endpoints
	KindMonitor   Kind = "monitor"   // a health monitor
)

func (k Kind) valid() bool {
	switch k {
	case KindInterface, KindProcess, KindContainer, KindAccount, KindGroup, KindMonitor:
		return true
	}
	return false
}

// Entity is one thing whose traffic is recorded.
type Entity struct {
	Kind Kind   `json:"kind"`
	Name string `json:"name"`
}

// String returns "kind:name".
func (e Entity) String() string { return string(e.Kind) + ":" + e.Name }

// Counters are traffic in one bucket (or one delta). Each is stored as a
// signed 64-bit integer: a value above 2^63−1 is refused with ErrOverflow.
type Counters struct {
	RxBytes   uint64 `json:"rx_bytes"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	TxPackets uint64 `json:"tx_packets"`
}

// Options configure a Store. Only Path is required.
type Options struct {
	// Path is the database file. Its directory must exist; the file is
	// created when missing.
	Path string
	// Location is where day, week, month and year buckets begin (default
	// time.Local).
	Location *time.Location
	// WeekStart is the first day of a week bucket (default Monday, as in
	// ISO 8601). time.Sunday is the zero value and so means the default:
	// weeks that start on Sunday need WeekStartSunday.
	WeekStart time.Weekday
	// Retention says how long each resolution is kept (zero fields: the
	// defaults in the package doc).
	Retention Retention
	// Now is the clock (default time.Now). Prune's background runs, the
	// retention check in Record and Percentile's range use it.
	Now func() time.Time
	// PruneEvery is how often Run prunes (default 10 minutes).
	PruneEvery time.Duration
	// OnPruneError receives the error of a failed background prune (default:
	// dropped; the next prune retries).
	OnPruneError func(error)
	// BusyTimeout is how long a statement waits for a lock held by another
	// connection or process before it fails (default 10 s). In WAL mode only
	// writers wait, for each other; readers never do.
	BusyTimeout time.Duration
}

// WeekStartSunday is the Options.WeekStart of weeks that start on Sunday
// (time.Sunday, the zero value, means the default Monday).
const WeekStartSunday time.Weekday = 7

// Errors callers can branch on.
var (
	// ErrCorrupt: the file is not a SQLite database or is damaged. The
	// error names the file, which Open leaves untouched.
	ErrCorrupt = errors.New("history database is corrupt or not a SQLite file")
	// ErrOverflow: a counter would exceed 2^63−1, the largest integer the
	// store holds. Nothing of the Record was committed.
	ErrOverflow = errors.New("counter exceeds the store's limit of 2^63-1")
)

// Store is an open history database. Its methods are safe for concurrent
// use; writes are serialised on one connection, reads use a separate pool.
type Store struct {
	path string
	loc  *time.Location
	week time.Weekday
	ret  Retention
	now  func() time.Time
	opt  Options

	w *sql.DB // the single writer connection
	r *sql.DB // query-only readers

	mu  sync.Mutex       // serialises writes and guards ids
	ids map[Entity]int64 // entity ids committed to the database
}

const (
	sqliteMagic        = "SQLite format 3\x00"
	defaultBusyTimeout = 10 * time.Second
	defaultPruneEvery  = 10 * time.Minute
)

// Open opens the history database at opt.Path, creating it or migrating its
// schema to this version. A file that is not a SQLite database, or a damaged
// one, gives an error wrapping ErrCorrupt that names the file; the file is
// left as it was. So is a SQLite database of another program, or one written
// by a newer netmeter.
func Open(opt Options) (*Store, error) {
	if opt.Path == "" {
		return nil, errors.New("history: no database path")
	}
	path, err := filepath.Abs(opt.Path)
	if err != nil {
		return nil, fmt.Errorf("history: database path %q: %w", opt.Path, err)
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("history: directory of %s: %w", path, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("history: %s is not a directory", filepath.Dir(path))
	}
	if err := checkHeader(path); err != nil {
		return nil, err
	}
	s := &Store{path: path, loc: opt.Location, week: opt.WeekStart, ret: opt.Retention.withDefaults(), now: opt.Now, opt: opt, ids: map[Entity]int64{}}
	if s.loc == nil {
		s.loc = time.Local
	}
	switch {
	case s.week == time.Sunday:
		s.week = time.Monday
	case s.week == WeekStartSunday:
		s.week = time.Sunday
	case s.week < time.Sunday || s.week > WeekStartSunday:
		return nil, fmt.Errorf("history: week start %d is not a weekday", opt.WeekStart)
	}
	if s.now == nil {
		s.now = time.Now
	}
	busy := opt.BusyTimeout
	if busy <= 0 {
		busy = defaultBusyTimeout
	}
	u := url.URL{Scheme: "file", Path: path}
	base := u.String() + "?_busy_timeout=" + fmt.Sprint(busy.Milliseconds())
	// Readers: query-only, several, opened first. Nothing below writes to
	// the file until the schema check has passed.
	if s.r, err = sql.Open("sqlite", base+"&_query_only=1"); err != nil {
		return nil, fmt.Errorf("history: open %s: %w", path, err)
	}
	// The writer: BEGIN IMMEDIATE takes the write lock at once (no deadlock
	// upgrading a read transaction); a commit is durable when it returns
	// (synchronous=FULL); statement journals stay in memory; the
	// WAL is copied into the database every 256 pages (1 MiB, a few dozen
	// Records) rather than SQLite's 1000, and cut back to 4 MiB when a long
	// reader made it grow.
	if s.w, err = sql.Open("sqlite", base+"&_txlock=immediate&_pragma=synchronous(FULL)&_pragma=temp_store(MEMORY)"+
		"&_pragma=wal_autocheckpoint(256)&_pragma=journal_size_limit(4194304)"); err != nil {
		s.r.Close()
		return nil, fmt.Errorf("history: open %s: %w", path, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)
	s.r.SetMaxIdleConns(4)
	if err := s.init(); err != nil {
		s.w.Close()
		s.r.Close()
		return nil, err
	}
	return s, nil
}

// checkHeader refuses, without writing anything, a file that is not a
// SQLite database. An empty file is a new database (SQLite's own rule).
func checkHeader(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("history: open %s: %w", path, err)
	}
	defer f.Close()
	hdr := make([]byte, 100)
	n, err := io.ReadFull(f, hdr)
	switch {
	case n == 0 && errors.Is(err, io.EOF):
		return nil
	case err != nil && !errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("history: read %s: %w", path, err)
	case n < len(hdr) || !bytes.Equal(hdr[:len(sqliteMagic)], []byte(sqliteMagic)):
		return fmt.Errorf("history: %s is not a SQLite database (no SQLite header; the file was left untouched — move it away to start a new history): %w", path, ErrCorrupt)
	}
	return nil
}

// init checks the file with a reader, then creates or migrates the schema
// with the writer.
func (s *Store) init() error {
	ctx := context.Background()
	v, err := s.schemaVersion(ctx, s.r)
	if err != nil {
		return s.openErr(err)
	}
	if v > len(migrations) {
		return fmt.Errorf("history: %s has schema version %d, newer than this netmeter's %d (the file was left untouched; upgrade netmeter)", s.path, v, len(migrations))
	}
	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode); err != nil {
		return s.openErr(err)
	}
	if mode != "wal" {
		return fmt.Errorf("history: %s: cannot use WAL mode (journal_mode is %q; is the file system a network one?)", s.path, mode)
	}
	if v == len(migrations) {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.openErr(err)
	}
	defer tx.Rollback()
	// Another process may have migrated since the check above.
	if v, err = s.schemaVersion(ctx, tx); err != nil {
		return s.openErr(err)
	}
	for ; v < len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("history: %s: migrate schema to version %d: %w", s.path, v+1, s.classify(err))
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES('schema_version', ?)
		ON CONFLICT(key) DO UPDATE SET value = excluded.value`, v); err != nil {
		return s.openErr(err)
	}
	if err := tx.Commit(); err != nil {
		return s.openErr(err)
	}
	return nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// schemaVersion is 0 for an empty database and an error for a database
// that is not a history store.
func (s *Store) schemaVersion(ctx context.Context, q querier) (int, error) {
	var tables int
	if err := q.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&tables); err != nil {
		return 0, err
	}
	if tables == 0 {
		return 0, nil
	}
	var hasMeta int
	if err := q.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'meta'").Scan(&hasMeta); err != nil {
		return 0, err
	}
	var v int
	if hasMeta == 1 {
		err := q.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = 'schema_version'").Scan(&v)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, err
		}
	}
	return 0, fmt.Errorf("history: %s is a SQLite database of another program (no schema_version); the file was left untouched", s.path)
}

// openErr classifies an error met while opening.
func (s *Store) openErr(err error) error {
	if errors.Is(err, ErrCorrupt) || !isSQLite(err) {
		return err
	}
	err = s.classify(err)
	if errors.Is(err, ErrCorrupt) {
		return err
	}
	return fmt.Errorf("history: open %s: %w", s.path, err)
}

func isSQLite(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se)
}

// classify turns SQLite's result codes into errors that say what happened:
// a full disk wraps syscall.ENOSPC, a damaged file ErrCorrupt.
func (s *Store) classify(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL:
		return fmt.Errorf("disk full (%w) writing %s: %w", syscall.ENOSPC, s.path, err)
	case sqlite3.SQLITE_IOERR:
		if s.diskFull() {
			return fmt.Errorf("disk full (%w) writing %s: %w", syscall.ENOSPC, s.path, err)
		}
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return fmt.Errorf("%w: %s (the file was left untouched; move it away to start a new history): %w", ErrCorrupt, s.path, err)
	}
	return err
}

// diskFull reports whether the file system holding the database has no
// space left: SQLite reports some failed writes (the WAL index) as I/O
// errors rather than SQLITE_FULL.
func (s *Store) diskFull() bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(s.path), &st); err != nil {
		return false
	}
	return st.Bavail == 0
}

// Path returns the database file's absolute path.
func (s *Store) Path() string { return s.path }

// Location returns where the store's day, week, month and year buckets
// begin.
func (s *Store) Location() *time.Location { return s.loc }

// Check runs SQLite's integrity check over the whole file and returns an
// error wrapping ErrCorrupt with SQLite's findings if it fails. It reads the
// whole file: seconds on a large store.
func (s *Store) Check() error {
	rows, err := s.r.Query("PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("history: integrity check of %s: %w", s.path, s.classify(err))
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return fmt.Errorf("history: integrity check of %s: %w", s.path, s.classify(err))
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("history: integrity check of %s: %w", s.path, s.classify(err))
	}
	if len(msgs) == 1 && msgs[0] == "ok" {
		return nil
	}
	return fmt.Errorf("%w: %s: integrity check: %q", ErrCorrupt, s.path, msgs)
}

// Close closes the database. Committed data is in the file (or its WAL,
// which the next Open reads).
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.w.Close(), s.r.Close())
}

// migrations[i] takes the schema from version i to i+1.
var migrations = []string{
	`CREATE TABLE meta (
		key   TEXT PRIMARY KEY,
		value ANY
	) STRICT;
	CREATE TABLE entity (
		id   INTEGER PRIMARY KEY,
		kind TEXT NOT NULL,
		name TEXT NOT NULL,
		UNIQUE (kind, name)
	) STRICT;
	CREATE TABLE traffic (
		res        TEXT    NOT NULL,
		entity     INTEGER NOT NULL REFERENCES entity(id),
		start_unix INTEGER NOT NULL,
		end_unix   INTEGER NOT NULL,
		rx_bytes   INTEGER NOT NULL CHECK (rx_bytes >= 0),
		tx_bytes   INTEGER NOT NULL CHECK (tx_bytes >= 0),
		rx_packets INTEGER NOT NULL CHECK (rx_packets >= 0),
		tx_packets INTEGER NOT NULL CHECK (tx_packets >= 0),
		PRIMARY KEY (res, start_unix, entity)
	) STRICT, WITHOUT ROWID;
	CREATE INDEX traffic_by_entity ON traffic (entity, res, start_unix);
	CREATE TABLE top_day (
		entity     INTEGER NOT NULL REFERENCES entity(id),
		start_unix INTEGER NOT NULL,
		end_unix   INTEGER NOT NULL,
		rx_bytes   INTEGER NOT NULL CHECK (rx_bytes >= 0),
		tx_bytes   INTEGER NOT NULL CHECK (tx_bytes >= 0),
		rx_packets INTEGER NOT NULL CHECK (rx_packets >= 0),
		tx_packets INTEGER NOT NULL CHECK (tx_packets >= 0),
		PRIMARY KEY (start_unix, entity)
	) STRICT, WITHOUT ROWID;
	CREATE INDEX top_day_by_entity ON top_day (entity, start_unix);
	CREATE TABLE slot (
		start_unix INTEGER PRIMARY KEY
	) STRICT;
	CREATE TABLE gap (
		id         INTEGER PRIMARY KEY,
		start_unix INTEGER NOT NULL,
		end_unix   INTEGER NOT NULL,
		reason     TEXT    NOT NULL
	) STRICT;
	CREATE INDEX gap_by_end ON gap (end_unix);
	CREATE TABLE state (
		key   TEXT PRIMARY KEY,
		value BLOB NOT NULL
	) STRICT;`,
}
