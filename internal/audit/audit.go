// Package audit is the connection audit log sink: one JSON line when a
// connection (or UDP/ICMP socket) is first seen and one when it closes, with
// its process, container, remote end, bytes and duration — what `iptables -j
// LOG` gives, but attributed and with totals. The file is size-limited and
// rotated (name.1 … name.N), so it cannot fill a disk.
package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/netmeter/netmeter/internal/snapshot"
)

// Options configure a Log.
type Options struct {
	Path string
	// MaxBytes rotates the file when a line would take it past this size
	// (default 64 MiB); Keep old files are kept (default 5).
	MaxBytes int64
	Keep     int
	// MaxTracked bounds the live connections remembered between open and
	// close (default 65536); beyond it the oldest is forgotten and its close
	// is not logged (counted in Log.Dropped), so a port scan cannot grow
	// memory.
	MaxTracked int
}

// Event is one line of the log.
type Event struct {
	Time       time.Time         `json:"time"`
	Event      string            `json:"event"` // "open" or "close"
	Cookie     uint64            `json:"cookie"`
	Proto      string            `json:"proto"`
	Local      snapshot.Endpoint `json:"local"`
	Remote     snapshot.Endpoint `json:"remote"`
	PID        int               `json:"pid"`
	Comm       string            `json:"comm"`
	Container  string            `json:"container,omitempty"`
	NetnsInode uint64            `json:"netns_inode"`
	// On close: totals since first seen and how long it lived.
	TxBytes    uint64  `json:"tx_bytes,omitempty"`
	RxBytes    uint64  `json:"rx_bytes,omitempty"`
	TxPayload  uint64  `json:"tx_payload_bytes,omitempty"`
	RxPayload  uint64  `json:"rx_payload_bytes,omitempty"`
	DurationMS int64   `json:"duration_ms,omitempty"`
	Retrans    *uint64 `json:"retrans_segs,omitempty"`
}

// Log writes audit events.
type Log struct {
	opt     Options
	mu      sync.Mutex
	f       *os.File
	size    int64
	open    map[uint64]time.Time // live cookie → first seen
	order   []uint64             // insertion order, for the bound
	closed  map[uint64]time.Time // cookie → when its close was logged
	Dropped uint64               // tracked entries evicted by MaxTracked
}

// Open opens (appends to) the log file.
func Open(opt Options) (*Log, error) {
	if opt.Path == "" {
		return nil, errors.New("audit log: no path")
	}
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = 64 << 20
	}
	if opt.Keep <= 0 {
		opt.Keep = 5
	}
	if opt.MaxTracked <= 0 {
		opt.MaxTracked = 65536
	}
	l := &Log{opt: opt, open: map[uint64]time.Time{}, closed: map[uint64]time.Time{}}
	if err := l.reopen(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Log) reopen() error {
	if err := os.MkdirAll(filepath.Dir(l.opt.Path), 0o750); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	f, err := os.OpenFile(l.opt.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit log: %w", err)
	}
	l.f, l.size = f, st.Size()
	return nil
}

// rotate moves path → path.1 → … → path.Keep (the oldest is removed).
func (l *Log) rotate() error {
	l.f.Close()
	os.Remove(l.opt.Path + "." + strconv.Itoa(l.opt.Keep))
	for i := l.opt.Keep - 1; i >= 1; i-- {
		os.Rename(l.opt.Path+"."+strconv.Itoa(i), l.opt.Path+"."+strconv.Itoa(i+1))
	}
	if err := os.Rename(l.opt.Path, l.opt.Path+".1"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("audit log rotate: %w", err)
	}
	return l.reopen()
}

func (l *Log) write(e *Event) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if l.size > 0 && l.size+int64(len(b)) > l.opt.MaxBytes {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	n, err := l.f.Write(b)
	l.size += int64(n)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}

func event(kind string, t time.Time, c *snapshot.Connection, ctr string) Event {
	return Event{Time: t, Event: kind, Cookie: c.Cookie, Proto: c.Proto, Local: c.Local, Remote: c.Remote,
		PID: c.Owner.PID, Comm: c.Owner.Comm, Container: ctr, NetnsInode: c.NetnsInode}
}

// Observe logs the opens and closes of one snapshot. containerOf names a
// process's container ("" for none; may be nil).
func (l *Log) Observe(s *snapshot.Snapshot, containerOf func(pid int) string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	for i := range s.Connections {
		c := &s.Connections[i]
		if _, done := l.closed[c.Cookie]; done {
			continue
		}
		ctr := ""
		if containerOf != nil {
			ctr = containerOf(c.Owner.PID)
		}
		start, tracked := l.open[c.Cookie]
		if !c.Closed {
			if !tracked {
				e := event("open", c.FirstSeen, c, ctr)
				keep(l.write(&e))
				l.open[c.Cookie] = c.FirstSeen
				l.order = append(l.order, c.Cookie)
			}
			continue
		}
		if !tracked {
			if c.FirstSeen.Before(s.Time.Add(-2 * s.Interval)) {
				continue // closed before this log started watching it
			}
			e := event("open", c.FirstSeen, c, ctr) // opened and closed within an interval
			keep(l.write(&e))
			start = c.FirstSeen
		}
		e := event("close", s.Time, c, ctr)
		e.TxBytes, e.RxBytes = c.Total.TxBytes, c.Total.RxBytes
		e.TxPayload, e.RxPayload = c.Total.TxPayload, c.Total.RxPayload
		if !start.IsZero() {
			e.DurationMS = s.Time.Sub(start).Milliseconds()
		}
		if c.TCP != nil {
			r := c.TCP.Total.RetransSegs
			e.Retrans = &r
		}
		keep(l.write(&e))
		delete(l.open, c.Cookie)
		l.closed[c.Cookie] = s.Time
	}
	for ck, t := range l.closed { // closed connections stay listed ~10 s
		if s.Time.Sub(t) > time.Minute {
			delete(l.closed, ck)
		}
	}
	l.bound()
	return first
}

// bound keeps at most MaxTracked live cookies, forgetting the oldest.
func (l *Log) bound() {
	for len(l.open) > l.opt.MaxTracked && len(l.order) > 0 {
		ck := l.order[0]
		l.order = l.order[1:]
		if _, ok := l.open[ck]; ok {
			delete(l.open, ck)
			l.Dropped++
		}
	}
	if len(l.order) > 4*l.opt.MaxTracked { // compact stale entries
		kept := l.order[:0]
		for _, ck := range l.order {
			if _, ok := l.open[ck]; ok {
				kept = append(kept, ck)
			}
		}
		l.order = kept
	}
}

// Close closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
