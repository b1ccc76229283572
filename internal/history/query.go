package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sort"
	"strings"
	"time"
)

// Query selects rows of one resolution.
type Query struct {
	// Entities are summed: several make a merged set (eth0+eth1). Entities
	// never recorded add nothing.
	Entities []Entity
	// Resolution is the bucket length of the rows.
	Resolution Resolution
	// Begin and End select the buckets that overlap [Begin, End); a zero
	// time leaves that side unbounded.
	Begin, End time.Time
	// Limit > 0 returns only the newest Limit rows.
	Limit int
}

// Row is one bucket's traffic: [Start, End), in the store's Location.
type Row struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Counters
}

// Query returns the traffic of q.Entities at q.Resolution, summed per
// bucket, oldest first. Buckets without traffic have no row.
func (s *Store) Query(q Query) ([]Row, error) {
	if !q.Resolution.valid() {
		return nil, fmt.Errorf("history: query: unknown resolution %q", q.Resolution)
	}
	ids, err := s.lookup(q.Entities)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	begin, end := int64(math.MinInt64), int64(math.MaxInt64)
	if !q.Begin.IsZero() {
		begin = q.Begin.Unix()
	}
	if !q.End.IsZero() {
		end = q.End.Unix()
		if q.End.Nanosecond() != 0 {
			end++ // [.., End) overlaps the second End falls in
		}
	}
	// The table is ordered by (res, start_unix, entity), so that a Record
	// writes few pages; a query reads one entity's rows through its index.
	rows, err := s.r.Query(`SELECT start_unix, end_unix, rx_bytes, tx_bytes, rx_packets, tx_packets
		FROM traffic INDEXED BY traffic_by_entity WHERE res = ? AND entity IN (`+placeholders(len(ids))+`)
		AND end_unix > ? AND start_unix < ?`,
		append(append([]any{string(q.Resolution)}, ids...), begin, end)...)
	if err != nil {
		return nil, fmt.Errorf("history: query %s: %w", q.Resolution, s.classify(err))
	}
	out, err := s.sumRows(rows)
	if err != nil {
		return nil, fmt.Errorf("history: query %s: %w", q.Resolution, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[len(out)-q.Limit:]
	}
	return out, nil
}

// Top returns the n busiest days of entities by rx+tx, busiest first (ties:
// the older day first). Days within the daily retention are all candidates;
// older ones are those Prune kept as each entity's Retention.TopDays
// busiest. For a merged set the sums are exact within the daily retention;
// an older day includes only the members for which it was among their own
// busiest days.
func (s *Store) Top(entities []Entity, n int) ([]Row, error) {
	if n <= 0 {
		return nil, fmt.Errorf("history: top %d days: want at least 1", n)
	}
	ids, err := s.lookup(entities)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	rows, err := s.r.Query(`SELECT start_unix, end_unix, rx_bytes, tx_bytes, rx_packets, tx_packets
		FROM top_day WHERE entity IN (`+placeholders(len(ids))+`)`, ids...)
	if err != nil {
		return nil, fmt.Errorf("history: top days: %w", s.classify(err))
	}
	out, err := s.sumRows(rows)
	if err != nil {
		return nil, fmt.Errorf("history: top days: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := total(out[i].Counters), total(out[j].Counters)
		if a != b {
			return a > b
		}
		return out[i].Start.Before(out[j].Start)
	})
	if len(out) > n {
		out = out[:n]
	}
	return out, nil
}

// total is rx+tx, saturating (two stored values cannot overflow, a merged
// set of many could).
func total(c Counters) uint64 {
	t, carry := bits.Add64(c.RxBytes, c.TxBytes, 0)
	if carry != 0 {
		return math.MaxUint64
	}
	return t
}

// sumRows reads (start, end, rx, tx, rxp, txp) rows and sums those of the
// same bucket.
func (s *Store) sumRows(rows *sql.Rows) ([]Row, error) {
	defer rows.Close()
	type key struct{ start, end int64 }
	idx := map[key]int{}
	var out []Row
	for rows.Next() {
		var k key
		var c [4]int64
		if err := rows.Scan(&k.start, &k.end, &c[0], &c[1], &c[2], &c[3]); err != nil {
			return nil, s.classify(err)
		}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, Row{Start: time.Unix(k.start, 0).In(s.loc), End: time.Unix(k.end, 0).In(s.loc)})
		}
		r := &out[i]
		for j, p := range []*uint64{&r.RxBytes, &r.TxBytes, &r.RxPackets, &r.TxPackets} {
			sum, carry := bits.Add64(*p, uint64(c[j]), 0)
			if carry != 0 {
				return nil, fmt.Errorf("merged set's sum at %v: %w", r.Start, ErrOverflow)
			}
			*p = sum
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.classify(err)
	}
	return out, nil
}

// lookup returns the ids of the recorded entities among es, as query
// arguments.
func (s *Store) lookup(es []Entity) ([]any, error) {
	if len(es) == 0 {
		return nil, errors.New("history: no entity")
	}
	seen := map[Entity]bool{}
	var ids []any
	for _, e := range es {
		if err := e.check(); err != nil {
			return nil, fmt.Errorf("history: %w", err)
		}
		if seen[e] {
			continue
		}
		seen[e] = true
		var id int64
		err := s.r.QueryRow(sqlEntityID, string(e.Kind), e.Name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("history: entity %s: %w", e, s.classify(err))
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// Entities returns the recorded entities of a kind (all kinds if kind is
// empty), by kind and name.
func (s *Store) Entities(kind Kind) ([]Entity, error) {
	rows, err := s.r.Query("SELECT kind, name FROM entity WHERE ?1 = '' OR kind = ?1 ORDER BY kind, name", string(kind))
	if err != nil {
		return nil, fmt.Errorf("history: entities: %w", s.classify(err))
	}
	defer rows.Close()
	var out []Entity
	for rows.Next() {
		var e Entity
		if err := rows.Scan(&e.Kind, &e.Name); err != nil {
			return nil, fmt.Errorf("history: entities: %w", s.classify(err))
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: entities: %w", s.classify(err))
	}
	return out, nil
}

// Gaps returns the gaps that overlap [begin, end) (a zero time: unbounded),
// oldest first.
func (s *Store) Gaps(begin, end time.Time) ([]Gap, error) {
	b, e := int64(math.MinInt64), int64(math.MaxInt64)
	if !begin.IsZero() {
		b = begin.Unix()
	}
	if !end.IsZero() {
		e = end.Unix()
		if end.Nanosecond() != 0 {
			e++
		}
	}
	rows, err := s.r.Query(`SELECT start_unix, end_unix, reason FROM gap
		WHERE end_unix > ? AND start_unix < ? ORDER BY start_unix, id`, b, e)
	if err != nil {
		return nil, fmt.Errorf("history: gaps: %w", s.classify(err))
	}
	defer rows.Close()
	var out []Gap
	for rows.Next() {
		var a, z int64
		var g Gap
		if err := rows.Scan(&a, &z, &g.Reason); err != nil {
			return nil, fmt.Errorf("history: gaps: %w", s.classify(err))
		}
		g.Start, g.End = time.Unix(a, 0).In(s.loc), time.Unix(z, 0).In(s.loc)
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: gaps: %w", s.classify(err))
	}
	return out, nil
}

// PercentileResult is a burstable-billing percentile of 5-minute rates.
type PercentileResult struct {
	// Percentile is the p asked for (95 for the 95th).
	Percentile float64 `json:"percentile"`
	// Rx, Tx and Max are the p-th percentile, in bytes per second, of the
	// received rates, of the sent rates, and of max(rx, tx) per sample —
	// Max is what ISPs usually bill. Each is ranked on its own.
	Rx  float64 `json:"rx"`
	Tx  float64 `json:"tx"`
	Max float64 `json:"max"`
	// Samples is how many 5-minute slots were ranked.
	Samples int `json:"samples"`
	// Truncated: the store holds traffic of these entities in the range
	// before the 5-minute retention's cutoff (in coarser buckets), which
	// could not be sampled.
	Truncated bool `json:"truncated"`
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of the 5-minute
// rates (a slot's bytes / 300 s) of entities, summed per slot for a merged
// set, over the complete 5-minute slots within [begin, end); a zero begin is
// unbounded, a zero end is now. The method is nearest-rank: the rates sorted ascending, the
// ⌈p/100 × N⌉-th of N (100 samples 1..100 give 95 at p=95).
//
// The samples are the slots in which the recorder committed a Record, for
// any entity: a slot without traffic of these entities is a 0 B/s sample,
// a slot in which nothing was recorded (the agent was down: a Gap) is no
// sample at all rather than an invented zero.
func (s *Store) Percentile(entities []Entity, begin, end time.Time, p float64) (PercentileResult, error) {
	res := PercentileResult{Percentile: p}
	if !(p > 0 && p <= 100) {
		return res, fmt.Errorf("history: percentile %v: want 0 < p ≤ 100", p)
	}
	now := s.now()
	if end.IsZero() {
		end = now
	}
	b := int64(math.MinInt64)
	if !begin.IsZero() {
		b = begin.Unix()
		if begin.Nanosecond() != 0 {
			b++
		}
	}
	e := end.Unix()
	ids, err := s.lookup(entities)
	if err != nil {
		return res, err
	}
	ctx := context.Background()
	// One read transaction: slots and rows from the same snapshot.
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return res, fmt.Errorf("history: percentile: %w", s.classify(err))
	}
	defer tx.Rollback()
	// Every recorded slot in the range, with the entities' rows in it (if
	// any), found through the primary key (res, start_unix, entity).
	rows, err := tx.QueryContext(ctx, `SELECT s.start_unix, t.rx_bytes, t.tx_bytes FROM slot s
		LEFT JOIN traffic t ON t.res = '5min' AND t.start_unix = s.start_unix AND t.entity IN (`+placeholders(len(ids))+`)
		WHERE s.start_unix >= ? AND s.start_unix + 300 <= ?`, slices.Concat(ids, []any{b, e})...)
	if err != nil {
		return res, fmt.Errorf("history: percentile: %w", s.classify(err))
	}
	slots := map[int64]*[2]uint64{}
	for rows.Next() {
		var a int64
		var rx, txb sql.NullInt64
		if err := rows.Scan(&a, &rx, &txb); err != nil {
			rows.Close()
			return res, fmt.Errorf("history: percentile: %w", s.classify(err))
		}
		v := slots[a]
		if v == nil {
			v = &[2]uint64{}
			slots[a] = v
		}
		v[0] = satAdd(v[0], uint64(rx.Int64))
		v[1] = satAdd(v[1], uint64(txb.Int64))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("history: percentile: %w", s.classify(err))
	}
	if len(ids) > 0 {
		if cut, ok := s.cutoff(Res5Min, now); ok && b < cut {
			// Coarser buckets wholly before the cutoff and within the range:
			// traffic that was measured but is no longer in 5-minute rows.
			err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM traffic
				WHERE res IN ('hour', 'day', 'week', 'month', 'year') AND entity IN (`+placeholders(len(ids))+`)
				AND end_unix <= ? AND end_unix > ?)`, slices.Concat(ids, []any{cut, b})...).Scan(&res.Truncated)
			if err != nil {
				return res, fmt.Errorf("history: percentile: %w", s.classify(err))
			}
		}
	}
	n := len(slots)
	res.Samples = n
	if n == 0 {
		return res, nil
	}
	rx, txr, mx := make([]uint64, 0, n), make([]uint64, 0, n), make([]uint64, 0, n)
	for _, v := range slots {
		rx, txr, mx = append(rx, v[0]), append(txr, v[1]), append(mx, max(v[0], v[1]))
	}
	rank := int(math.Ceil(p * float64(n) / 100)) // 1-based nearest rank; p·n is exact for integers
	rank = min(max(rank, 1), n)
	pick := func(xs []uint64) float64 {
		slices.Sort(xs)
		return float64(xs[rank-1]) / 300
	}
	res.Rx, res.Tx, res.Max = pick(rx), pick(txr), pick(mx)
	return res, nil
}

func satAdd(a, b uint64) uint64 {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return math.MaxUint64
	}
	return s
}
