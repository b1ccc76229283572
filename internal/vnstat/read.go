package vnstat

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// busyTimeout is how long Read waits for a vnstatd that holds the write lock.
const busyTimeout = 10 * time.Second

// Read reads the vnStat 2.x database at path (usually
// /var/lib/vnstat/vnstat.db). It opens the file read-only and never
// modifies it; a vnstatd may keep running. Errors wrap [ErrNotVnStat] or
// [ErrUnsupportedVersion] when the file is not one this package can read.
func Read(path string, opts ...Option) (*Database, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	d, err := read(path, cfg)
	if err != nil {
		return nil, fmt.Errorf("read vnstat database %s: %w", path, err)
	}
	return d, nil
}

func read(path string, cfg config) (*Database, error) {
	fi, err := os.Stat(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the caller names the path
		}
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: not a regular file (%v)", ErrNotVnStat, fi.Mode().Type())
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	immutable, err := idleWAL(abs)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn(abs, immutable))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	ctx := context.Background()
	// One read transaction: a running vnstatd cannot commit between the
	// queries below, so totals and rows are one consistent snapshot.
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, sqliteErr(err)
	}
	defer tx.Rollback() // read-only: nothing to undo
	r := reader{ctx: ctx, tx: tx, cfg: cfg}
	return r.read()
}

// idleWAL reports whether path is a WAL-mode database (vnstat.conf
// DatabaseWriteAheadLogging 1) without a -wal file, so no vnstatd has it
// open. SQLite would create -wal and -shm files next to it to read it, even
// read-only, and leave them behind owned by us, which can lock a vnstatd
// running as another user out of its own database. Such a file is read
// with immutable=1 instead: everything committed is in the main file.
func idleWAL(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var h [20]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return false, nil // too short for a header: SQLite decides
	}
	// Header bytes 18 and 19 are the write and read format versions, 2 in
	// WAL mode (https://www.sqlite.org/fileformat2.html#database_header).
	if string(h[:16]) != "SQLite format 3\x00" || h[18] != 2 {
		return false, nil
	}
	_, err = os.Lstat(path + "-wal")
	return errors.Is(err, fs.ErrNotExist), nil
}

// dsn is an SQLite URI that opens path read-only (and immutable if
// immutable is set). The path is percent-encoded, so '?', '#' and '%' in a
// file name stay part of it.
func dsn(path string, immutable bool) string {
	var b strings.Builder
	b.WriteString("file://")
	for i := 0; i < len(path); i++ {
		c := path[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("/-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	fmt.Fprintf(&b, "?mode=ro&_query_only=1&_busy_timeout=%d", busyTimeout.Milliseconds())
	if immutable {
		b.WriteString("&immutable=1")
	}
	return b.String()
}

// sqliteErr names the SQLite result codes a caller can act on.
func sqliteErr(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_NOTADB {
		return fmt.Errorf("%w: not an SQLite database (vnStat 1.x files are not supported): %v", ErrNotVnStat, err)
	}
	return err
}

type reader struct {
	ctx context.Context
	tx  *sql.Tx
	cfg config
}

// columns every vnStat 2.x table has and Read uses.
var schema = map[string][]string{
	"info":      {"name", "value"},
	"interface": {"id", "name", "alias", "active", "created", "updated", "rxtotal", "txtotal"},
}

var dataColumns = []string{"id", "interface", "date", "rx", "tx"}

func (r *reader) read() (*Database, error) {
	if err := r.checkSchema(); err != nil {
		return nil, err
	}
	d := &Database{Location: r.cfg.loc}
	var err error
	if d.Version, d.VnStatVersion, err = r.version(); err != nil {
		return nil, err
	}
	if err := r.checkCount(); err != nil {
		return nil, err
	}
	ids, err := r.interfaces(d)
	if err != nil {
		return nil, err
	}
	for _, t := range Tables {
		if err := r.table(t, d, ids); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (r *reader) checkSchema() error {
	rows, err := r.tx.QueryContext(r.ctx, `SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		return sqliteErr(err)
	}
	tables, err := scanStrings(rows)
	if err != nil {
		return sqliteErr(err)
	}
	for _, name := range append([]string{"info", "interface"}, tableNames()...) {
		if !slices.Contains(tables, name) {
			return fmt.Errorf("%w: no table %q", ErrNotVnStat, name)
		}
		want, ok := schema[name]
		if !ok {
			want = dataColumns
		}
		rows, err := r.tx.QueryContext(r.ctx, `SELECT name FROM pragma_table_info(?)`, name)
		if err != nil {
			return err
		}
		cols, err := scanStrings(rows)
		if err != nil {
			return err
		}
		for _, c := range want {
			if !slices.Contains(cols, c) {
				return fmt.Errorf("%w: table %q has no column %q", ErrNotVnStat, name, c)
			}
		}
	}
	return nil
}

func tableNames() []string {
	s := make([]string, len(Tables))
	for i, t := range Tables {
		s[i] = string(t)
	}
	return s
}

func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// version returns info.dbversion, checked, and info.vnstatversion.
func (r *reader) version() (int, string, error) {
	get := func(name string) (typ string, val any, err error) {
		err = r.tx.QueryRowContext(r.ctx,
			`SELECT typeof(value), substr(value, 1, 64) FROM info WHERE name = ?`, name).Scan(&typ, &val)
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil, nil
		}
		return typ, val, err
	}
	typ, val, err := get("dbversion")
	if err != nil {
		return 0, "", err
	}
	if typ == "" {
		return 0, "", fmt.Errorf("%w: no dbversion in table info", ErrNotVnStat)
	}
	v, err := parseVersion(typ, val)
	if err != nil {
		return 0, "", err
	}
	typ, val, err = get("vnstatversion")
	if err != nil {
		return 0, "", err
	}
	var vn string
	if typ == "text" {
		vn, _ = val.(string)
	}
	return v, vn, nil
}

// parseVersion checks info.dbversion: vnStat writes the text "1".
func parseVersion(typ string, val any) (int, error) {
	var v int
	switch x := val.(type) {
	case int64:
		v = int(min(max(x, -1), SchemaVersion+1))
	case string:
		n, err := strconv.Atoi(x)
		if err != nil {
			return 0, fmt.Errorf("%w: dbversion %q is not a number", ErrNotVnStat, x)
		}
		v = n
	default:
		return 0, fmt.Errorf("%w: dbversion is %s", ErrNotVnStat, typ)
	}
	switch {
	case v > SchemaVersion:
		return 0, fmt.Errorf("%w: dbversion %v is newer than %d, the version this netmeter reads (was the database written by a newer vnStat?)",
			ErrUnsupportedVersion, val, SchemaVersion)
	case v < 1:
		return 0, fmt.Errorf("%w: dbversion %v", ErrNotVnStat, val)
	}
	return v, nil
}

func (r *reader) checkCount() error {
	q := `SELECT (SELECT count(*) FROM interface)`
	for _, t := range Tables {
		q += ` + (SELECT count(*) FROM "` + string(t) + `")`
	}
	var n int64
	if err := r.tx.QueryRowContext(r.ctx, q).Scan(&n); err != nil {
		return err
	}
	if n > int64(r.cfg.maxRows) {
		return fmt.Errorf("%d rows, more than the limit of %d (vnstat.WithMaxRows)", n, r.cfg.maxRows)
	}
	return nil
}

// interfaces fills d.Interfaces and returns the index of each interface id.
func (r *reader) interfaces(d *Database) (map[int64]int, error) {
	rows, err := r.tx.QueryContext(r.ctx, fmt.Sprintf(`SELECT id,
		typeof(name), substr(name, 1, %[1]d), typeof(alias), substr(alias, 1, %[1]d), active,
		typeof(created), substr(created, 1, 32), typeof(updated), substr(updated, 1, 32),
		rxtotal, txtotal FROM interface`, maxText+1))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type withID struct {
		id  int64
		ifc Interface
	}
	var all []withID
	for rows.Next() {
		var v rawInterface
		if err := rows.Scan(&v.id, &v.nameType, &v.name, &v.aliasType, &v.alias, &v.active,
			&v.createdType, &v.created, &v.updatedType, &v.updated, &v.rx, &v.tx); err != nil {
			return nil, err
		}
		id, ifc, err := v.parse(r.cfg.loc)
		if err != nil {
			return nil, fmt.Errorf("table interface, id %v: %w", v.id, err)
		}
		all = append(all, withID{id, ifc})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(a, b withID) int { return cmp.Compare(a.ifc.Name, b.ifc.Name) })
	// id is the INTEGER PRIMARY KEY, so unique; name is UNIQUE in vnStat's
	// schema but may not be in a hand-made one.
	ids := make(map[int64]int, len(all))
	for i, w := range all {
		if i > 0 && w.ifc.Name == all[i-1].ifc.Name {
			return nil, fmt.Errorf("table interface: name %q twice", w.ifc.Name)
		}
		ids[w.id] = i
		d.Interfaces = append(d.Interfaces, w.ifc)
	}
	return ids, nil
}

// rawInterface is one row of table interface as SQLite returned it.
type rawInterface struct {
	id, name, alias, active, created, updated, rx, tx any
	nameType, aliasType, createdType, updatedType     string
}

func (v rawInterface) parse(loc *time.Location) (id int64, ifc Interface, err error) {
	if id, err = integer("id", v.id); err != nil {
		return
	}
	if ifc.Name, err = text("name", v.nameType, v.name, false); err != nil {
		return id, ifc, err
	}
	if ifc.Name == "" {
		return id, ifc, errors.New("name is empty")
	}
	if ifc.Alias, err = text("alias", v.aliasType, v.alias, true); err != nil {
		return id, ifc, err
	}
	var active int64
	if active, err = integer("active", v.active); err != nil {
		return id, ifc, err
	}
	ifc.Active = active != 0
	for _, c := range []struct {
		name, typ string
		val       any
		dst       *time.Time
	}{{"created", v.createdType, v.created, &ifc.Created}, {"updated", v.updatedType, v.updated, &ifc.Updated}} {
		s, err := text(c.name, c.typ, c.val, false)
		if err != nil {
			return id, ifc, err
		}
		cv, err := parseCivil(s, layoutDateTime)
		if err != nil {
			return id, ifc, fmt.Errorf("%s: %w", c.name, err)
		}
		*c.dst = cv.in(loc)
	}
	if ifc.Rx, err = bytesCount("rxtotal", v.rx); err != nil {
		return id, ifc, err
	}
	if ifc.Tx, err = bytesCount("txtotal", v.tx); err != nil {
		return id, ifc, err
	}
	return id, ifc, nil
}

// table reads the rows of data table t into the interfaces of d.
func (r *reader) table(t Table, d *Database, ids map[int64]int) error {
	rows, err := r.tx.QueryContext(r.ctx,
		`SELECT id, interface, typeof(date), substr(date, 1, 32), rx, tx FROM "`+string(t)+`"`)
	if err != nil {
		return err
	}
	defer rows.Close()
	type labelled struct {
		label civil
		id    any
		rx    uint64
		tx    uint64
	}
	per := make([][]labelled, len(d.Interfaces))
	for rows.Next() {
		var v rawRow
		if err := rows.Scan(&v.id, &v.iface, &v.dateType, &v.date, &v.rx, &v.tx); err != nil {
			return err
		}
		iface, label, rx, tx, err := v.parse(t)
		if err != nil {
			return fmt.Errorf("table %s, id %v: %w", t, v.id, err)
		}
		i, ok := ids[iface]
		if !ok || v.iface == nil {
			continue // vnStat only reads rows of interfaces it knows
		}
		per[i] = append(per[i], labelled{label, v.id, rx, tx})
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for i, ls := range per {
		slices.SortFunc(ls, func(a, b labelled) int { return a.label.compare(b.label) })
		out := make([]Row, len(ls))
		for j, l := range ls {
			if j > 0 && l.label == ls[j-1].label {
				return fmt.Errorf("table %s, id %v: interface %q has date %s twice", t, l.id, d.Interfaces[i].Name, l.label)
			}
			out[j] = Row{Time: l.label.in(r.cfg.loc), Rx: l.rx, Tx: l.tx}
		}
		if len(out) > 0 {
			*d.Interfaces[i].rows(t) = out
		}
	}
	return nil
}

// rawRow is one row of a data table as SQLite returned it.
type rawRow struct {
	id, iface, date, rx, tx any
	dateType                string
}

// parse checks one data row; iface is 0 when the row has no interface.
func (v rawRow) parse(t Table) (iface int64, label civil, rx, tx uint64, err error) {
	if v.iface != nil {
		if iface, err = integer("interface", v.iface); err != nil {
			return
		}
	}
	s, err := text("date", v.dateType, v.date, false)
	if err != nil {
		return
	}
	if label, err = parseTableDate(t, s); err != nil {
		return
	}
	if rx, err = bytesCount("rx", v.rx); err != nil {
		return
	}
	tx, err = bytesCount("tx", v.tx)
	return
}

// text checks a column fetched as typeof(col), substr(col, 1, maxText+1).
func text(col, typ string, v any, nullable bool) (string, error) {
	switch typ {
	case "null":
		if nullable {
			return "", nil
		}
		return "", fmt.Errorf("%s is NULL", col)
	case "text":
	default:
		return "", fmt.Errorf("%s is %s, want text", col, typ)
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s is %T, want text", col, v)
	}
	if len(s) > maxText {
		return "", fmt.Errorf("%s is longer than %d bytes", col, maxText)
	}
	return s, nil
}

func integer(col string, v any) (int64, error) {
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("%s is %s, want integer", col, sqlType(v))
	}
	return n, nil
}

// bytesCount checks a byte counter: vnStat stores uint64 sums in SQLite's
// int64, so a negative value means the database is damaged (or a counter
// passed 8 EiB, when SQLite would have turned it into a real).
func bytesCount(col string, v any) (uint64, error) {
	n, err := integer(col, v)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("%s is negative (%d)", col, n)
	}
	return uint64(n), nil
}

func sqlType(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case int64:
		return "integer"
	case float64:
		return fmt.Sprintf("real (%g)", x)
	case string:
		return "text"
	case []byte:
		return "blob"
	}
	return fmt.Sprintf("%T", v)
}
