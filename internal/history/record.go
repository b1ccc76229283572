package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Gap is a time in which nothing was recorded, and why (the agent was not
// running, the disk was full …).
type Gap struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Reason string    `json:"reason"`
}

// upsertCounters adds a delta to a bucket. A sum beyond int64 becomes NULL,
// which the NOT NULL constraint refuses (SQLite would otherwise turn it into
// a floating-point number); recordErr reports that as ErrOverflow.
const upsertCounters = `
	ON CONFLICT DO UPDATE SET
		rx_bytes   = CASE WHEN excluded.rx_bytes   > 9223372036854775807 - rx_bytes   THEN NULL ELSE rx_bytes   + excluded.rx_bytes   END,
		tx_bytes   = CASE WHEN excluded.tx_bytes   > 9223372036854775807 - tx_bytes   THEN NULL ELSE tx_bytes   + excluded.tx_bytes   END,
		rx_packets = CASE WHEN excluded.rx_packets > 9223372036854775807 - rx_packets THEN NULL ELSE rx_packets + excluded.rx_packets END,
		tx_packets = CASE WHEN excluded.tx_packets > 9223372036854775807 - tx_packets THEN NULL ELSE tx_packets + excluded.tx_packets END`

const (
	sqlTraffic  = `INSERT INTO traffic (res, entity, start_unix, end_unix, rx_bytes, tx_bytes, rx_packets, tx_packets) VALUES `
	sqlTopDay   = `INSERT INTO top_day (entity, start_unix, end_unix, rx_bytes, tx_bytes, rx_packets, tx_packets) VALUES `
	sqlSlot     = `INSERT INTO slot (start_unix) VALUES (?) ON CONFLICT DO NOTHING`
	sqlState    = `INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT DO UPDATE SET value = excluded.value`
	sqlUnState  = `DELETE FROM state WHERE key = ?`
	sqlEntityID = `SELECT id FROM entity WHERE kind = ? AND name = ?`
	sqlEntity   = `INSERT INTO entity (kind, name) VALUES (?, ?) RETURNING id`
)

// Record adds deltas to the bucket that contains t at every resolution, and
// to t's day among the top days, in one transaction: all of it is committed
// or none. Entities are created on first sight. A resolution whose
// retention already excludes t's bucket (at Options.Now) is not written: the
// next Prune would delete a row that holds only part of its bucket.
//
// A delta above 2^63−1, or one that would take a stored counter beyond it,
// fails with ErrOverflow (a caller that keeps failed deltas to retry them
// must drop such a one, or every later Record fails too). A full disk fails with an error wrapping
// syscall.ENOSPC; nothing of that Record is committed, and Record works
// again once there is space.
func (s *Store) Record(t time.Time, deltas map[Entity]Counters) error {
	return s.RecordWithState(t, deltas, nil)
}

// RecordWithState is Record that also sets state keys in the same
// transaction, so the counters the deltas came from are committed with them
// (a nil value deletes its key).
func (s *Store) RecordWithState(t time.Time, deltas map[Entity]Counters, state map[string][]byte) error {
	if t.IsZero() {
		return errors.New("history: record: zero time")
	}
	ents := make([]Entity, 0, len(deltas))
	for e, c := range deltas {
		if err := e.check(); err != nil {
			return fmt.Errorf("history: record: %w", err)
		}
		if c.RxBytes > math.MaxInt64 || c.TxBytes > math.MaxInt64 || c.RxPackets > math.MaxInt64 || c.TxPackets > math.MaxInt64 {
			return fmt.Errorf("history: record %s: delta %+v: %w", e, c, ErrOverflow)
		}
		ents = append(ents, e)
	}
	for k := range state {
		if k == "" {
			return errors.New("history: record: empty state key")
		}
	}
	// A fixed order: the same Record always touches rows in the same order.
	sort.Slice(ents, func(i, j int) bool {
		if ents[i].Kind != ents[j].Kind {
			return ents[i].Kind < ents[j].Kind
		}
		return ents[i].Name < ents[j].Name
	})

	type bucket struct {
		res        Resolution
		start, end int64
	}
	now := s.now()
	var buckets []bucket
	for _, r := range Resolutions {
		a, b := s.bucket(r, t)
		if cut, ok := s.cutoff(r, now); ok && b <= cut {
			continue
		}
		buckets = append(buckets, bucket{r, a, b})
	}
	dayStart, dayEnd := s.bucket(ResDay, t)
	dayCut, dayLimited := s.cutoff(ResDay, now)
	top := !dayLimited || dayEnd > dayCut
	slotStart, slotEnd := s.bucket(Res5Min, t)
	fiveCut, fiveLimited := s.cutoff(Res5Min, now)
	slot := !fiveLimited || slotEnd > fiveCut

	s.mu.Lock()
	defer s.mu.Unlock()
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.writeErr("record", err)
	}
	defer tx.Rollback()
	newIDs := map[Entity]int64{}
	var traffic, tops [][]any
	for _, e := range ents {
		id, err := s.entityID(ctx, tx, e, newIDs)
		if err != nil {
			return err
		}
		c := deltas[e]
		if c == (Counters{}) {
			continue
		}
		v := []any{int64(c.RxBytes), int64(c.TxBytes), int64(c.RxPackets), int64(c.TxPackets)}
		for _, b := range buckets {
			traffic = append(traffic, append([]any{string(b.res), id, b.start, b.end}, v...))
		}
		if top {
			tops = append(tops, append([]any{id, dayStart, dayEnd}, v...))
		}
	}
	if err := s.upsert(ctx, tx, sqlTraffic, traffic); err != nil {
		return s.recordErr(t, deltas, err)
	}
	if err := s.upsert(ctx, tx, sqlTopDay, tops); err != nil {
		return s.recordErr(t, deltas, err)
	}
	if slot {
		if _, err := tx.ExecContext(ctx, sqlSlot, slotStart); err != nil {
			return s.writeErr("record 5-minute slot", err)
		}
	}
	if err := setState(ctx, tx, state); err != nil {
		return s.writeErr("record state", err)
	}
	if err := tx.Commit(); err != nil {
		return s.writeErr("record: commit", err)
	}
	for e, id := range newIDs {
		s.ids[e] = id
	}
	return nil
}

// upsertBatch is how many rows one statement adds: 8 × 512 variables stay
// far below SQLite's limit of 32766.
const upsertBatch = 512

// upsert runs insert (a statement up to VALUES) with upsertCounters for
// rows, in batches: one statement per batch, not per row.
func (s *Store) upsert(ctx context.Context, tx *sql.Tx, insert string, rows [][]any) error {
	for len(rows) > 0 {
		n := min(len(rows), upsertBatch)
		var q strings.Builder
		q.WriteString(insert)
		args := make([]any, 0, n*len(rows[0]))
		one := "(" + placeholders(len(rows[0])) + ")"
		for i, r := range rows[:n] {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString(one)
			args = append(args, r...)
		}
		q.WriteString(upsertCounters)
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// recordErr explains a failed upsert. For ErrOverflow it names the
// entities, resolutions and counters that would overflow (read back from
// the committed rows: the failed transaction changed nothing).
func (s *Store) recordErr(t time.Time, deltas map[Entity]Counters, err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) || se.Code() != sqlite3.SQLITE_CONSTRAINT_NOTNULL {
		return s.writeErr(fmt.Sprintf("record at %s", t.UTC().Format(time.RFC3339)), err)
	}
	var what []string
	for e, c := range deltas {
		for _, r := range Resolutions {
			rows, qerr := s.Query(Query{Entities: []Entity{e}, Resolution: r, Begin: t, End: t.Add(time.Nanosecond)})
			if qerr != nil || len(rows) == 0 {
				continue
			}
			have := rows[0].Counters
			for _, f := range []struct {
				name    string
				have, d uint64
			}{{"rx_bytes", have.RxBytes, c.RxBytes}, {"tx_bytes", have.TxBytes, c.TxBytes},
				{"rx_packets", have.RxPackets, c.RxPackets}, {"tx_packets", have.TxPackets, c.TxPackets}} {
				if f.d > math.MaxInt64-f.have {
					what = append(what, fmt.Sprintf("%s %s %s %d + %d", e, r, f.name, f.have, f.d))
				}
			}
		}
	}
	sort.Strings(what)
	return fmt.Errorf("history: record at %s: the sum would exceed 2^63-1 (%s): %w",
		t.UTC().Format(time.RFC3339), strings.Join(what, "; "), ErrOverflow)
}

func (e Entity) check() error {
	if !e.Kind.valid() {
		return fmt.Errorf("entity %s: unknown kind %q", e, e.Kind)
	}
	if e.Name == "" {
		return fmt.Errorf("entity of kind %s without a name", e.Kind)
	}
	return nil
}

// entityID returns e's id, creating the entity in tx if needed. Ids created
// in tx go to created and reach s.ids only when tx commits.
func (s *Store) entityID(ctx context.Context, tx *sql.Tx, e Entity, created map[Entity]int64) (int64, error) {
	if id, ok := s.ids[e]; ok {
		return id, nil
	}
	if id, ok := created[e]; ok {
		return id, nil
	}
	var id int64
	err := tx.QueryRowContext(ctx, sqlEntityID, string(e.Kind), e.Name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.QueryRowContext(ctx, sqlEntity, string(e.Kind), e.Name).Scan(&id)
	}
	if err != nil {
		return 0, s.writeErr("record entity "+e.String(), err)
	}
	created[e] = id
	return id, nil
}

func setState(ctx context.Context, tx *sql.Tx, state map[string][]byte) error {
	for k, v := range state {
		var err error
		if v == nil {
			_, err = tx.ExecContext(ctx, sqlUnState, k)
		} else {
			_, err = tx.ExecContext(ctx, sqlState, k, v)
		}
		if err != nil {
			return fmt.Errorf("key %q: %w", k, err)
		}
	}
	return nil
}

// writeErr wraps a failed write with what was being written and what it
// means: a full disk (syscall.ENOSPC) or ErrCorrupt.
func (s *Store) writeErr(op string, err error) error {
	return fmt.Errorf("history: %s: %w", op, s.classify(err))
}

// SetState sets a key of the recorder's state (nil deletes it). Use
// RecordWithState to commit state with the deltas it belongs to.
func (s *Store) SetState(key string, value []byte) error {
	if key == "" {
		return errors.New("history: set state: empty key")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.writeErr("set state", err)
	}
	defer tx.Rollback()
	if err := setState(ctx, tx, map[string][]byte{key: value}); err != nil {
		return s.writeErr("set state", err)
	}
	if err := tx.Commit(); err != nil {
		return s.writeErr("set state", err)
	}
	return nil
}

// State returns a state key's value, or nil without an error if it is not
// set.
func (s *Store) State(key string) ([]byte, error) {
	var v []byte
	err := s.r.QueryRow("SELECT value FROM state WHERE key = ?", key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("history: state %q: %w", key, s.classify(err))
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// AddGap records a time in which nothing was recorded. Its bounds are kept
// to the second, widened outward.
func (s *Store) AddGap(g Gap) error {
	if !g.End.After(g.Start) {
		return fmt.Errorf("history: gap from %v to %v: the end must be after the start", g.Start, g.End)
	}
	if g.Reason == "" {
		return errors.New("history: gap without a reason")
	}
	end := g.End.Unix()
	if g.End.Nanosecond() != 0 {
		end++
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Exec("INSERT INTO gap (start_unix, end_unix, reason) VALUES (?, ?, ?)", g.Start.Unix(), end, g.Reason); err != nil {
		return s.writeErr("add gap", err)
	}
	return nil
}
