// Package history is netmeter's embedded traffic history: what vnStat keeps,
// per interface, program, container, billing account, group and monitor, in
// rollups at 5 minutes, hours, days, weeks, months and years plus the top
// days, with the bugs vnStat's users complain about fixed:
//
//   - "database is locked": readers never wait for the writer and never fail
//     because it writes (SQLite WAL, a busy timeout, one writer connection and
//     a separate pool of query-only readers);
//   - +16 EiB after a counter reset: the store adds deltas, it never
//     subtracts counters; a delta or a sum that does not fit the store's
//     integers is an error ([ErrOverflow]), never a wrapped value;
//   - traffic lost while the daemon was down: [Store.RecordWithState]
//     commits the deltas and the raw counters they came from in one
//     transaction, so a restarted recorder knows exactly where it stopped,
//     and downtime is kept as a [Gap] with its reason — shown, never invented
//     or silently dropped.
//
// # Why SQLite, and why this driver
//
// The store is one file (default /var/lib/netmeter/history.db) that the agent
// writes and `netmeter report` / `netmeter quota` read at the same time.
// SQLite gives that with transactions that survive kill -9 and power loss
// (synchronous=FULL: each Record is durable when it returns). WAL mode lets
// readers run while the writer writes: a reader sees the last committed
// state and never blocks the writer, nor the writer it. The driver is
// modernc.org/sqlite, SQLite translated to Go, so `go build` needs no cgo
// and no C toolchain, and cross-compiles like the rest of netmeter.
//
// # Time
//
// Times are stored in UTC, as Unix seconds. 5-minute and hour buckets are
// aligned to UTC (in zones with a half-hour offset, such as Asia/Kolkata, an
// hour bucket therefore runs from :30 to :30 local time). Day, week, month
// and year buckets start at local midnight in [Options.Location] (default
// time.Local) when the row is written, so a day lasts 23 or 25 hours across a
// DST change; weeks start on [Options.WeekStart] (default Monday, as in ISO
// 8601). Rows written before the Location was changed keep their old
// boundaries.
//
// # Schema (version 1, in the meta table's schema_version row)
//
//	meta    (key TEXT PRIMARY KEY, value ANY)                 -- schema_version
//	entity  (id INTEGER PRIMARY KEY, kind TEXT, name TEXT, UNIQUE(kind, name))
//	traffic (res TEXT, start_unix INTEGER, entity INTEGER, end_unix INTEGER,
//	         rx_bytes, tx_bytes, rx_packets, tx_packets INTEGER,
//	         PRIMARY KEY(res, start_unix, entity)) WITHOUT ROWID
//	        -- one row per entity and bucket; res is 5min, hour, day, week,
//	        -- month or year; [start_unix, end_unix) is the bucket. Ordered by
//	        -- time, so the rows a Record adds to sit together on a few pages
//	        -- (a Record of 50 entities writes ~10 pages, not ~200);
//	        -- reports read one entity's rows through
//	        -- traffic_by_entity (entity, res, start_unix)
//	top_day (start_unix, entity, end_unix, rx_bytes, tx_bytes, rx_packets,
//	         tx_packets, PRIMARY KEY(start_unix, entity)) WITHOUT ROWID,
//	         index top_day_by_entity (entity, start_unix)
//	        -- every day within the daily retention, and beyond it each
//	        -- entity's busiest days
//	slot    (start_unix INTEGER PRIMARY KEY)
//	        -- 5-minute slots in which a Record committed: the samples of
//	        -- Percentile (a slot without a row is 0 B/s, a slot missing here
//	        -- is downtime and no sample)
//	gap     (id INTEGER PRIMARY KEY, start_unix, end_unix INTEGER, reason TEXT)
//	state   (key TEXT PRIMARY KEY, value BLOB)                -- the recorder's continuity
//
// Every table is STRICT. Counters are uint64 in Go and signed 64-bit integers
// in SQLite, so one stored value is limited to 2^63−1 (8 EiB); Record rejects
// a delta or a sum beyond it with [ErrOverflow] and commits nothing.
//
// # Retention (the zero Retention)
//
//	5-minute rows   48 hours  (vnStat: 48 h)
//	hourly rows     96 hours  (vnStat: 4 days)
//	daily rows      62 days   (vnStat: 62)
//	weekly rows    104 weeks  (two years; vnStat keeps no weeks)
//	monthly rows    25 months (vnStat: 25)
//	yearly rows     forever   (vnStat: forever)
//	top days        20 per entity, forever (vnStat: 20)
//	gaps, state     forever (a few rows)
//
// A duration (5-minute, hourly) keeps the rows that end after now minus the
// duration; a count N (days, weeks, months, years) keeps the bucket that
// contains now and the N−1 before it. A negative value keeps a resolution
// forever. [Store.Prune] applies it; the process that records runs
// [Store.Run] to prune in the background (nothing else prunes).
//
// # Writers and readers
//
// One process records (the agent); any number read (reports, quota checks)
// while it does. A Store writes on one connection, in one transaction per
// Record (BEGIN IMMEDIATE, synchronous=FULL), and reads on a separate pool of
// query-only connections, each query seeing the last committed Record.
package history
