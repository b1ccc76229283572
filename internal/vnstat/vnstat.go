package vnstat

import (
	"errors"
	"fmt"
	"time"
)

// SchemaVersion is the info.dbversion this package reads, the first and so
// far only schema of vnStat 2.x (2.10 writes "1"). A newer one is refused:
// vnStat itself refuses a version it does not know.
const SchemaVersion = 1

// DefaultMaxRows bounds the rows Read loads, over all tables and
// interfaces: about 80 MB of memory. vnStat's default retention keeps about
// 800 rows per interface; five years of 5-minute rows of one interface
// (FiveMinuteHours -1) are 530 000.
const DefaultMaxRows = 2_000_000

// maxText bounds an interface's name and alias, in bytes. vnStat itself
// keeps 32.
const maxText = 256

var (
	// ErrNotVnStat: the file is not an SQLite database, or lacks a table,
	// column or info row every vnStat 2.x database has.
	ErrNotVnStat = errors.New("not a vnStat 2.x database")
	// ErrUnsupportedVersion: the database's info.dbversion is newer than
	// SchemaVersion, written by a vnStat this package does not know.
	ErrUnsupportedVersion = errors.New("unsupported vnStat database version")
)

// Table names one of vnStat's data tables.
type Table string

// vnStat's data tables, in the order of [Tables].
const (
	FiveMinute Table = "fiveminute"
	Hour       Table = "hour"
	Day        Table = "day"
	Month      Table = "month"
	Year       Table = "year"
	Top        Table = "top"
)

// Tables lists the data tables from the finest resolution to the coarsest,
// then top.
var Tables = []Table{FiveMinute, Hour, Day, Month, Year, Top}

// Database is what Read found in a vnStat database.
type Database struct {
	// Version is info.dbversion (SchemaVersion).
	Version int
	// VnStatVersion is info.vnstatversion, the vnStat that last opened the
	// database for writing, like "2.10"; empty if absent.
	VnStatVersion string
	// Location is the zone the date labels were read in (see WithLocation).
	Location *time.Location
	// Interfaces are sorted by name.
	Interfaces []Interface
}

// Interface is one monitored interface and its rows.
type Interface struct {
	// Name is the kernel's interface name; Alias the user's label (may be
	// empty). Both are untrusted bytes, not necessarily UTF-8.
	Name, Alias string
	// Active is false once vnStat saw the interface disappear.
	Active bool
	// Created is when vnStat added the interface, Updated when it last
	// wrote its counters (whole seconds).
	Created, Updated time.Time
	// Rx and Tx are the lifetime totals in bytes (rxtotal, txtotal),
	// including traffic whose rows retention has deleted since.
	Rx, Tx uint64

	// Rows of each table, oldest first; Top too (vnStat lists it by rx+tx).
	FiveMinute, Hour, Day, Month, Year, Top []Row
}

// Row is one stored row: the bytes received and sent in one period.
type Row struct {
	// Time is the instant the period starts, in the Database's Location.
	Time time.Time
	// Rx and Tx are bytes.
	Rx, Tx uint64
}

// Rows returns the interface's rows of table t (nil for an unknown table).
func (i *Interface) Rows(t Table) []Row {
	if p := i.rows(t); p != nil {
		return *p
	}
	return nil
}

func (i *Interface) rows(t Table) *[]Row {
	switch t {
	case FiveMinute:
		return &i.FiveMinute
	case Hour:
		return &i.Hour
	case Day:
		return &i.Day
	case Month:
		return &i.Month
	case Year:
		return &i.Year
	case Top:
		return &i.Top
	}
	return nil
}

// Option changes how Read reads.
type Option func(*config)

type config struct {
	loc     *time.Location
	maxRows int
}

// WithLocation reads the date labels as wall clock in loc (default
// time.Local, as vnStat does). Pass the zone of the vnstatd that wrote the
// database: time.UTC if its vnstat.conf had UseUTC 1.
func WithLocation(loc *time.Location) Option { return func(c *config) { c.loc = loc } }

// WithMaxRows bounds the number of rows Read loads, counting interfaces and
// the rows of every table (default DefaultMaxRows). Read fails instead of
// loading more.
func WithMaxRows(n int) Option { return func(c *config) { c.maxRows = n } }

func newConfig(opts []Option) (config, error) {
	c := config{loc: time.Local, maxRows: DefaultMaxRows}
	for _, o := range opts {
		o(&c)
	}
	if c.loc == nil {
		return c, errors.New("vnstat.WithLocation: nil location")
	}
	if c.maxRows < 1 {
		return c, fmt.Errorf("vnstat.WithMaxRows(%d): want at least 1", c.maxRows)
	}
	return c, nil
}
