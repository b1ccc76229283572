// Package vnstat reads a vnStat 2.x database (vnstat.db, SQLite) so its
// history can be imported: per interface the name, alias, creation and
// update times, lifetime totals and every row of the fiveminute, hour, day,
// month, year and top tables.
//
// # How vnStat 2.x stores time
//
// Found by reading the schema vnStat 2.10 creates (src/dbsql.c, db_create)
// and the rows its daemon writes, and checked against `vnstat --json`:
//
//   - Every date column (interface.created and .updated, and date in the six
//     data tables) is declared DATE but holds TEXT: a local wall-clock label
//     without zone or offset, produced by SQLite's date functions with the
//     'localtime' modifier (or without it when vnstat.conf has UseUTC 1).
//     No epoch is stored anywhere except info.btime (the boot time).
//   - created, updated:  "YYYY-MM-DD HH:MM:SS", datetime(t, 'unixepoch', 'localtime').
//   - fiveminute:        "YYYY-MM-DD HH:MM:00", the start of the 5-minute bin.
//     The bin is floored in UTC and then converted, so the minute is a
//     multiple of 5 only where the zone's offset is (all zones today).
//   - hour:              "YYYY-MM-DD HH:00:00".
//   - day, top:          "YYYY-MM-DD" (top holds the busiest days, by rx+tx).
//   - month:             "YYYY-MM-01" (with MonthRotate > 1 the row of a
//     billing month that starts on day N still reads "-01").
//   - year:              "YYYY-01-01".
//   - rx, tx and the interface totals are INTEGER bytes (SQLite int64).
//
// The database does not record the zone its labels were written in. vnStat
// reads them back with strftime('%s', date, 'utc'), which interprets the
// label in the zone of the process that reads (TZ), whatever UseUTC was
// when it was written. [Read] does the same with [time.Local] by default;
// [WithLocation] names the writer's zone instead (time.UTC for a database
// written with UseUTC 1). A [Row]'s Time is the instant its period starts.
// A label repeated by a DST fall-back (one hour row holds both 01:00 hours)
// resolves to the same instant SQLite picks. A label the zone skipped — a
// day whose midnight DST skips (America/Santiago, Asia/Beirut), or
// Australia/Lord_Howe's hour whose first half DST skips — resolves to the
// transition, the first instant that carries the label. SQLite 3.40 (the
// one Debian 12's vnStat uses) agrees west of UTC but picks an instant in
// the previous period east of it (Beirut 1 h, Lord Howe 30 min earlier).
// Everywhere else Row.Time equals the timestamp of `vnstat --json` under
// the same TZ, as a test checks. For years before 1970 and after 2037
// SQLite borrows the rules of another year; Read uses the zone's own rules.
//
// # Untrusted input
//
// The file is opened read-only through an SQLite URI (mode=ro), never
// written, and read inside one read transaction so a running vnstatd cannot
// change it halfway. A WAL-mode database (DatabaseWriteAheadLogging 1) that
// no vnstatd has open (no -wal file) is opened immutable=1 instead, because
// SQLite would otherwise create -wal and -shm files beside it. It is treated as untrusted: the schema and
// info.dbversion are checked first ([ErrNotVnStat], [ErrUnsupportedVersion]),
// every value's SQLite type is checked, text is fetched through substr so a
// huge value is never loaded, names and aliases are at most 256 bytes,
// dates must have the table's exact layout and a real calendar date in
// 1900–9999, byte counts must be non-negative integers, and the number of
// rows is bounded ([WithMaxRows]). Rows of an interface id missing from the
// interface table are skipped, as vnStat skips them.
package vnstat
