package alert

import "time"

// slotsPerWindow is how finely a window is cut: sums over "the last
// window" are over the current slot and the slotsPerWindow-1 before it, so
// they cover the window to within one slot (a tenth of it).
const slotsPerWindow = 10

// clock cuts time into slots of window/slotsPerWindow since the first
// observation, and remembers how much of each of the last `windows` windows'
// slots was observed (so that rates divide by time actually watched).
// Per-entity counters live in [series] values that follow the clock.
type clock struct {
	slot   time.Duration
	n      int // slots kept: windows × slotsPerWindow
	origin time.Time
	cur    int64 // absolute index of the current slot; -1 before the first tick
	cover  []time.Duration
}

func newClock(window time.Duration, windows int) *clock {
	n := windows * slotsPerWindow
	return &clock{slot: max(window/slotsPerWindow, time.Nanosecond), n: n, cur: -1, cover: make([]time.Duration, n)}
}

// advance moves the clock to now and returns how many slots it moved (the
// series must be advanced by as many; n or more means all of them are
// stale). A clock that goes backwards stays in its slot.
func (c *clock) advance(now time.Time) int {
	if c.cur < 0 {
		c.origin, c.cur = now, 0
		return c.n
	}
	k := int64(now.Sub(c.origin) / c.slot)
	if k <= c.cur {
		return 0
	}
	steps := k - c.cur
	c.cur = k
	for i := int64(0); i < min(steps, int64(c.n)); i++ {
		c.cover[c.idx(k-i)] = 0
	}
	return int(min(steps, int64(c.n)))
}

func (c *clock) idx(abs int64) int { return int(abs % int64(c.n)) }

// observe records that d of time was watched in the current slot.
func (c *clock) observe(d time.Duration) { c.cover[c.idx(c.cur)] += d }

// covered sums the watched time of window w back (0: the latest window,
// ending with the current slot; 1: the one before it).
func (c *clock) covered(w int) time.Duration {
	var sum time.Duration
	for i := range slotsPerWindow {
		abs := c.cur - int64(w*slotsPerWindow+i)
		if abs < 0 {
			break
		}
		sum += c.cover[c.idx(abs)]
	}
	return sum
}

// series is one entity's counters per slot, aligned with a clock.
type series []uint64

// advance zeroes the slots the clock moved into.
func (s series) advance(c *clock, steps int) {
	for i := range min(steps, c.n) {
		s[c.idx(c.cur-int64(i))] = 0
	}
}

func (s series) add(c *clock, v uint64) { s[c.idx(c.cur)] += v }

// sum adds the slots of window w back.
func (s series) sum(c *clock, w int) uint64 {
	var sum uint64
	for i := range slotsPerWindow {
		abs := c.cur - int64(w*slotsPerWindow+i)
		if abs < 0 {
			break
		}
		sum += s[c.idx(abs)]
	}
	return sum
}

func (s series) zero() bool {
	for _, v := range s {
		if v != 0 {
			return false
		}
	}
	return true
}
