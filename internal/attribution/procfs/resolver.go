package procfs

import (
	"errors"
	"fmt"
	"os"
	"sync"
)

// DefaultMaxEntries is the default bound of a Resolver's cache.
const DefaultMaxEntries = 8192

// Option configures a Resolver.
type Option func(*resolverConfig) error

type resolverConfig struct {
	maxEntries int
}

// WithMaxEntries bounds the cache to n processes (default
// DefaultMaxEntries); the least recently looked-up process is evicted
// first. n must be positive.
func WithMaxEntries(n int) Option {
	return func(c *resolverConfig) error {
		if n <= 0 {
			return fmt.Errorf("procfs resolver: max entries %d, want > 0", n)
		}
		c.maxEntries = n
		return nil
	}
}

// Resolver caches [FS.Process] by pid and start time. It is safe for
// concurrent use. Memory is bounded by its LRU, whatever a fork bomb or
// port scan does; exited processes leave it through [Resolver.Prune] or
// [Resolver.Forget], or fall off the end of the LRU.
type Resolver struct {
	fs  FS
	max int

	mu      sync.Mutex
	entries map[int]*entry
	lru     entry // sentinel: lru.next is the most recently used
}

// entry is what the Resolver knows about one pid.
type entry struct {
	pid  int
	info Info
	ok   bool // info holds the process now using pid
	// dead is a start time known to belong to an exited process that used
	// pid, so that asking about it again costs no read of /proc. 0: none.
	dead       uint64
	prev, next *entry
}

// NewResolver returns a Resolver reading fs.
func NewResolver(fs FS, opts ...Option) (*Resolver, error) {
	c := resolverConfig{maxEntries: DefaultMaxEntries}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	r := &Resolver{fs: fs, max: c.maxEntries, entries: make(map[int]*entry)}
	r.lru.prev, r.lru.next = &r.lru, &r.lru
	return r, nil
}

// Lookup returns the process using pid. startTicks, if not 0, names which
// process the caller means — its start time in clock ticks since boot, as
// in [Info.StartTicks] (see [StartTicksFromBoottime]) — and Lookup reports
// false once that process has exited, even if the pid was reused. With
// startTicks 0 it returns whichever process holds pid, from the cache if it
// has one.
//
// A cached hit costs one map lookup under a mutex and no allocation; a miss
// reads /proc. Lookup reports false for processes that are gone and on
// read errors (which are not cached).
func (r *Resolver) Lookup(pid int, startTicks uint64) (Info, bool) {
	r.mu.Lock()
	if e := r.entries[pid]; e != nil {
		if e.ok && (startTicks == 0 || e.info.StartTicks == startTicks) {
			r.touch(e)
			info := e.info
			r.mu.Unlock()
			return info, true
		}
		if startTicks != 0 && e.dead == startTicks {
			r.touch(e)
			r.mu.Unlock()
			return Info{}, false
		}
	}
	r.mu.Unlock()

	// Read /proc without the lock; two callers missing on the same pid at
	// once both read it, and the later answer wins.
	info, err := r.fs.Process(pid)

	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entries[pid]
	switch {
	case err == nil:
		if e == nil {
			e = r.insert(pid)
		}
		e.info, e.ok = info, true
		r.touch(e)
		if startTicks != 0 && info.StartTicks != startTicks {
			e.dead = startTicks // the caller's process exited; pid was reused
			return Info{}, false
		}
		return info, true
	case errors.Is(err, os.ErrNotExist):
		if startTicks == 0 {
			if e != nil {
				r.remove(e)
			}
			return Info{}, false
		}
		if e == nil {
			e = r.insert(pid)
		}
		e.info, e.ok, e.dead = Info{}, false, startTicks
		r.touch(e)
		return Info{}, false
	default:
		return Info{}, false
	}
}

// Forget drops pid from the cache, e.g. when the engine saw it exit.
func (r *Resolver) Forget(pid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.entries[pid]; e != nil {
		r.remove(e)
	}
}

// Len returns the number of pids cached.
func (r *Resolver) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries)
}

// Prune drops the processes that have exited or whose pid now belongs to
// another process, and the remembered exits, and returns how many pids it
// dropped. It reads /proc/<pid>/stat once per cached process, without
// holding the lock; call it every few seconds or minutes.
func (r *Resolver) Prune() int {
	type cached struct {
		pid   int
		start uint64
	}
	r.mu.Lock()
	live := make([]cached, 0, len(r.entries))
	for pid, e := range r.entries {
		if e.ok {
			live = append(live, cached{pid, e.info.StartTicks})
		}
	}
	r.mu.Unlock()

	// gone maps a pid to the start time of the process found gone, so that
	// an entry refreshed meanwhile by Lookup survives.
	gone := make(map[int]uint64)
	for _, c := range live {
		start, err := r.fs.startTicks(c.pid)
		// Other errors (EACCES under hidepid=1, EMFILE) say nothing about
		// the process: keep it.
		if (err != nil && errors.Is(err, os.ErrNotExist)) || (err == nil && start != c.start) {
			gone[c.pid] = c.start
		}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for pid, e := range r.entries {
		switch {
		case !e.ok:
			r.remove(e)
			n++
		case hasStart(gone, pid, e.info.StartTicks):
			r.remove(e)
			n++
		default:
			e.dead = 0
		}
	}
	return n
}

func hasStart(m map[int]uint64, pid int, start uint64) bool {
	s, ok := m[pid]
	return ok && s == start
}

func (r *Resolver) insert(pid int) *entry {
	if len(r.entries) >= r.max {
		r.remove(r.lru.prev)
	}
	e := &entry{pid: pid}
	r.entries[pid] = e
	e.prev, e.next = &r.lru, r.lru.next
	e.prev.next, e.next.prev = e, e
	return e
}

func (r *Resolver) touch(e *entry) {
	if r.lru.next == e {
		return
	}
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = &r.lru, r.lru.next
	e.prev.next, e.next.prev = e, e
}

func (r *Resolver) remove(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
	delete(r.entries, e.pid)
}
