package vnstat

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/netmeter/netmeter/internal/testnet"
)

// vnStatSchema is the schema vnStat 2.10 creates (src/dbsql.c, db_create),
// as `sqlite3 vnstat.db .schema` prints it for a database its daemon made.
var vnStatSchema = `
CREATE TABLE info(
  id       INTEGER PRIMARY KEY,
  name     TEXT UNIQUE NOT NULL,
  value    TEXT NOT NULL);
CREATE TABLE interface(
  id           INTEGER PRIMARY KEY,
  name         TEXT UNIQUE NOT NULL,
  alias        TEXT,
  active       INTEGER NOT NULL,
  created      DATE NOT NULL,
  updated      DATE NOT NULL,
  rxcounter    INTEGER NOT NULL,
  txcounter    INTEGER NOT NULL,
  rxtotal      INTEGER NOT NULL,
  txtotal      INTEGER NOT NULL);
` + dataTableDDL

var dataTableDDL = func() string {
	var b strings.Builder
	for _, t := range Tables {
		b.WriteString(`CREATE TABLE ` + string(t) + `(
  id           INTEGER PRIMARY KEY,
  interface    INTEGER REFERENCES interface(id) ON DELETE CASCADE,
  date         DATE NOT NULL,
  rx           INTEGER NOT NULL,
  tx           INTEGER NOT NULL,
  CONSTRAINT u UNIQUE (interface, date));
`)
	}
	return b.String()
}()

// fixture is a hand-made vnStat database in a test's temporary directory.
type fixture struct {
	t    testing.TB
	Path string
	db   *sql.DB
}

// newFixture creates a database with vnStat's schema (or ddl instead, if
// given) and info rows dbversion "1", vnstatversion "2.10".
func newFixture(t testing.TB, ddl ...string) *fixture {
	t.Helper()
	f := &fixture{t: t, Path: filepath.Join(t.TempDir(), "vnstat.db")}
	db, err := sql.Open("sqlite", f.Path)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	f.db = db
	t.Cleanup(func() { db.Close() })
	if len(ddl) == 0 {
		ddl = []string{vnStatSchema}
	}
	for _, q := range ddl {
		f.exec(q)
	}
	if strings.Contains(ddl[0], "CREATE TABLE info") {
		f.exec(`INSERT INTO info (name, value) VALUES ('btime', '4294967295'), ('dbversion', '1'), ('vnstatversion', '2.10')`)
	}
	return f
}

func (f *fixture) exec(q string, args ...any) {
	f.t.Helper()
	if _, err := f.db.Exec(q, args...); err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
}

// addInterface adds an interface row as db_addinterface and the daemon
// would leave it.
func (f *fixture) addInterface(id int64, name string, alias any, created, updated string, rx, tx any) {
	f.t.Helper()
	f.exec(`INSERT INTO interface (id, name, alias, active, created, updated, rxcounter, txcounter, rxtotal, txtotal)
		VALUES (?, ?, ?, 1, ?, ?, 0, 0, ?, ?)`, id, name, alias, created, updated, rx, tx)
}

func (f *fixture) addRow(t Table, iface any, date any, rx, tx any) {
	f.t.Helper()
	f.exec(`INSERT INTO `+string(t)+` (interface, date, rx, tx) VALUES (?, ?, ?, ?)`, iface, date, rx, tx)
}

// close closes the writer's connection, so Read sees a file nobody holds.
func (f *fixture) close() {
	f.t.Helper()
	if err := f.db.Close(); err != nil {
		f.t.Fatal(err)
	}
}

// dirState is a directory's file names with their content hash and
// modification time, to prove Read changed nothing.
func dirState(t testing.TB, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		m[e.Name()] = string(sum[:]) + fi.ModTime().String() + fi.Mode().String()
	}
	return m
}

// requireVnStat returns the paths of vnstat and vnstatd (2.x), skipping t
// when they are not installed, or failing it when
// NETMETER_REQUIRE_PRIVILEGED=1 (CI installs them: .ci/run).
func requireVnStat(t testing.TB) (vnstat, vnstatd string) {
	t.Helper()
	fail := func(why string) {
		t.Helper()
		if os.Getenv(testnet.EnvRequirePrivileged) == "1" {
			t.Fatalf("%s; %s=1 requires it", why, testnet.EnvRequirePrivileged)
		}
		t.Skipf("%s (apt-get install vnstat; set %s=1 to fail instead)", why, testnet.EnvRequirePrivileged)
	}
	find := func(name string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"} {
			if p := filepath.Join(dir, name); isExecutable(p) {
				return p
			}
		}
		return ""
	}
	vnstat, vnstatd = find("vnstat"), find("vnstatd")
	if vnstat == "" || vnstatd == "" {
		fail("vnStat is not installed (no vnstat or vnstatd)")
	}
	out, err := exec.Command(vnstat, "--version").CombinedOutput()
	if err != nil {
		fail("vnstat --version: " + err.Error())
	}
	if !bytes.HasPrefix(out, []byte("vnStat 2.")) {
		fail("vnStat 2.x needed, vnstat --version says " + strings.TrimSpace(string(out)))
	}
	return vnstat, vnstatd
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// vnJSON is `vnstat --json` output, jsonversion 2 (vnStat 2.x).
type vnJSON struct {
	VnStatVersion string `json:"vnstatversion"`
	JSONVersion   string `json:"jsonversion"`
	Interfaces    []struct {
		Name    string `json:"name"`
		Alias   string `json:"alias"`
		Created struct {
			Timestamp int64 `json:"timestamp"`
		} `json:"created"`
		Updated struct {
			Timestamp int64 `json:"timestamp"`
		} `json:"updated"`
		Traffic struct {
			Total struct {
				Rx uint64 `json:"rx"`
				Tx uint64 `json:"tx"`
			} `json:"total"`
			FiveMinute []vnRow `json:"fiveminute"`
			Hour       []vnRow `json:"hour"`
			Day        []vnRow `json:"day"`
			Month      []vnRow `json:"month"`
			Year       []vnRow `json:"year"`
			Top        []vnRow `json:"top"`
		} `json:"traffic"`
	} `json:"interfaces"`
}

type vnRow struct {
	Timestamp int64  `json:"timestamp"`
	Rx        uint64 `json:"rx"`
	Tx        uint64 `json:"tx"`
}

// rowsOf returns the JSON rows of table t, sorted by time (vnStat lists top
// by traffic).
func (j *vnJSON) rowsOf(i int, t Table) []vnRow {
	tr := j.Interfaces[i].Traffic
	var r []vnRow
	switch t {
	case FiveMinute:
		r = tr.FiveMinute
	case Hour:
		r = tr.Hour
	case Day:
		r = tr.Day
	case Month:
		r = tr.Month
	case Year:
		r = tr.Year
	case Top:
		r = tr.Top
	}
	r = slices.Clone(r)
	slices.SortFunc(r, func(a, b vnRow) int { return int(a.Timestamp - b.Timestamp) })
	return r
}

// runVnStatJSON runs vnstat with args (which include --json) in zone tz
// and decodes its output.
func runVnStatJSON(t testing.TB, vnstat, tz string, args ...string) *vnJSON {
	t.Helper()
	cmd := exec.Command(vnstat, args...)
	cmd.Env = append(os.Environ(), "TZ="+tz, "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s%s", strings.Join(cmd.Args, " "), err, out, stderr.Bytes())
	}
	var j vnJSON
	if err := json.Unmarshal(out, &j); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	if j.JSONVersion != "2" {
		t.Fatalf("%s: jsonversion %q, this test reads 2", strings.Join(cmd.Args, " "), j.JSONVersion)
	}
	return &j
}

// ourRows converts Read's rows to vnStat's JSON shape.
func ourRows(rs []Row) []vnRow {
	out := make([]vnRow, len(rs))
	for i, r := range rs {
		out[i] = vnRow{Timestamp: r.Time.Unix(), Rx: r.Rx, Tx: r.Tx}
	}
	return out
}
