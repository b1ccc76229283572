package container

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Default runtime sockets the [Registry] watches for. A socket that is absent
// is looked for again at each reconcile, so a runtime started later is found.
var (
	DefaultDockerSockets = []string{"/var/run/docker.sock", "/run/podman/podman.sock"}
	DefaultCRIEndpoints  = []string{"/run/containerd/containerd.sock", "/var/run/crio/crio.sock"}
)

// Registry defaults.
const (
	DefaultReconcileInterval = 30 * time.Second
	DefaultMaxContainers     = 4096
	DefaultGracePeriod       = 2 * time.Minute
	DefaultLookupTimeout     = 2 * time.Second
)

// Option configures a [Registry].
type Option func(*config) error

type config struct {
	dockerSockets []string
	criEndpoints  []string
	sources       []Source
	interval      time.Duration
	max           int
	grace         time.Duration
	lookupTimeout time.Duration
	procRoot      string
	onError       func(error)
	onEvent       func(Event)
	now           func() time.Time // for tests
}

// WithDockerSockets replaces [DefaultDockerSockets]: the Engine API sockets
// (dockerd, podman system service) to use when present. None disables them.
func WithDockerSockets(paths ...string) Option {
	return func(c *config) error { c.dockerSockets = paths; return nil }
}

// WithCRIEndpoints replaces [DefaultCRIEndpoints]: the CRI sockets
// (containerd, CRI-O) to use when present. None disables them.
func WithCRIEndpoints(paths ...string) Option {
	return func(c *config) error { c.criEndpoints = paths; return nil }
}

// WithSources replaces socket discovery by the given sources, which the
// Registry closes on Close.
func WithSources(srcs ...Source) Option {
	return func(c *config) error {
		c.sources = srcs
		c.dockerSockets, c.criEndpoints = nil, nil
		return nil
	}
}

// WithReconcileInterval sets how often every runtime is listed again
// (default [DefaultReconcileInterval]); events keep the cache current in
// between. Fallback answers (no runtime knew a container) are kept as long.
func WithReconcileInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("container registry: reconcile interval %v: must be positive", d)
		}
		c.interval = d
		return nil
	}
}

// WithMaxContainers bounds the cache (default [DefaultMaxContainers]); the
// least recently used entries go first.
func WithMaxContainers(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("container registry: max containers %d: must be at least 1", n)
		}
		c.max = n
		return nil
	}
}

// WithGracePeriod sets how long a dead container's Info is kept so that its
// final bytes are still labelled (default [DefaultGracePeriod]).
func WithGracePeriod(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("container registry: grace period %v: must not be negative", d)
		}
		c.grace = d
		return nil
	}
}

// WithLookupTimeout bounds the runtime calls a cache miss makes (default
// [DefaultLookupTimeout]).
func WithLookupTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("container registry: lookup timeout %v: must be positive", d)
		}
		c.lookupTimeout = d
		return nil
	}
}

// WithProcRoot sets where LookupPID reads <pid>/cgroup (default /proc).
func WithProcRoot(dir string) Option {
	return func(c *config) error { c.procRoot = dir; return nil }
}

// WithErrorHandler receives the errors of background work: runtimes that fail
// to list, event streams that break (each error once until the source
// recovers). It is called from the Registry's goroutines and must not block.
// By default they are dropped.
func WithErrorHandler(fn func(error)) Option {
	return func(c *config) error { c.onError = fn; return nil }
}

// WithEventHandler receives each container event after the cache has been
// updated for it. It is called from the Registry's goroutines and must not
// block.
func WithEventHandler(fn func(Event)) Option {
	return func(c *config) error { c.onEvent = fn; return nil }
}

// Registry answers which container a cgroup or process belongs to, with the
// runtime's metadata when a runtime's socket is present. It lists every
// runtime periodically, follows their events in between, and keeps a bounded
// cache in which dead containers stay for a grace period. It is safe for
// concurrent use. The maps and slices of the Info it returns are shared:
// treat them as read-only.
type Registry struct {
	cfg    config
	now    func() time.Time
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}
	synced chan struct{} // closed after the first background Sync

	slotsMu sync.Mutex
	slots   []*slot
	syncMu  sync.Mutex // one Sync at a time: lists apply in order

	mu       sync.Mutex
	entries  map[string]*entry
	lru      *list.List // of *entry, most recently used first
	byPID    map[int]*entry
	inflight map[string]chan struct{}
	// seq counts events applied; a list taken before an event must not
	// undo it (resurrect a container that died, restore an old name).
	seq uint64

	closeOnce sync.Once
}

type entry struct {
	info     Info
	src      *slot     // source that reported it; nil for a fallback
	expires  time.Time // fallback: ask the runtimes again after
	deadAt   time.Time // zero while running
	elem     *list.Element
	indexPID int
	eventSeq uint64 // r.seq when an event last changed it
}

// slot is one source, or a socket path that may become one.
type slot struct {
	path    string
	newSrc  func(string) (Source, error) // nil for a given source
	src     Source
	off     bool   // the endpoint is not a runtime of this kind
	lastErr string // last reported list error
	running bool   // events goroutine started
}

// NewRegistry starts a Registry: a first reconcile runs in the background
// (call Sync to wait for one).
func NewRegistry(opts ...Option) (*Registry, error) {
	cfg := config{
		dockerSockets: DefaultDockerSockets,
		criEndpoints:  DefaultCRIEndpoints,
		interval:      DefaultReconcileInterval,
		max:           DefaultMaxContainers,
		grace:         DefaultGracePeriod,
		lookupTimeout: DefaultLookupTimeout,
		procRoot:      "/proc",
		now:           time.Now,
	}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	r := &Registry{
		cfg:      cfg,
		now:      cfg.now,
		kick:     make(chan struct{}, 1),
		synced:   make(chan struct{}),
		entries:  make(map[string]*entry),
		lru:      list.New(),
		byPID:    make(map[int]*entry),
		inflight: make(map[string]chan struct{}),
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	for _, s := range cfg.sources {
		r.slots = append(r.slots, &slot{path: s.String(), src: s})
	}
	for _, p := range cfg.dockerSockets {
		r.slots = append(r.slots, &slot{path: p, newSrc: func(p string) (Source, error) { return NewDocker(p) }})
	}
	for _, p := range cfg.criEndpoints {
		r.slots = append(r.slots, &slot{path: p, newSrc: func(p string) (Source, error) { return NewCRI(p) }})
	}
	r.wg.Add(1)
	go r.loop()
	return r, nil
}

// Close stops the background work and closes the sources. Lookups still
// answer from the cache and fallbacks afterwards.
func (r *Registry) Close() error {
	var errs []error
	r.closeOnce.Do(func() {
		r.cancel()
		r.wg.Wait()
		r.slotsMu.Lock()
		defer r.slotsMu.Unlock()
		for _, s := range r.slots {
			if s.src != nil {
				errs = append(errs, s.src.Close())
			}
		}
	})
	return errors.Join(errs...)
}

func (r *Registry) loop() {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.interval)
	defer t.Stop()
	first := true
	for {
		_ = r.Sync(r.ctx) // errors went to the handler
		if first {
			close(r.synced)
			first = false
		}
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		case <-r.kick:
		}
	}
}

// Sync lists every present runtime now (each bounded by the reconcile
// interval), updates the cache (containers gone from a list are marked dead)
// and drops entries past their grace period.
// It returns the runtimes' errors, which also go to the error handler.
func (r *Registry) Sync(ctx context.Context) error {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	var errs []error
	for _, s := range r.activeSlots() {
		r.mu.Lock()
		seq := r.seq
		r.mu.Unlock()
		// A hung runtime must not stall the reconciles of the others.
		lctx, cancel := context.WithTimeout(ctx, r.cfg.interval)
		infos, err := s.src.List(lctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if status.Code(err) == codes.Unimplemented {
				// A containerd without its CRI plugin, say.
				r.slotsMu.Lock()
				s.off = true
				r.slotsMu.Unlock()
				err = fmt.Errorf("%v: not used: %w", s.src, err)
			}
			errs = append(errs, err)
			r.reportSlot(s, err)
			continue
		}
		r.reportSlot(s, nil)
		r.apply(s, infos, seq)
	}
	r.prune()
	return errors.Join(errs...)
}

// activeSlots returns the slots that have a source, creating sources for
// sockets that have appeared and starting their event goroutines.
func (r *Registry) activeSlots() []*slot {
	r.slotsMu.Lock()
	defer r.slotsMu.Unlock()
	var out []*slot
	for _, s := range r.slots {
		if s.off {
			continue
		}
		if s.src == nil {
			if r.ctx.Err() != nil {
				continue // closed: open nothing new
			}
			fi, err := os.Stat(s.path)
			if err != nil || fi.Mode().Type() != os.ModeSocket {
				continue
			}
			src, err := s.newSrc(s.path)
			if err != nil {
				r.report(err)
				continue
			}
			s.src = src
		}
		if !s.running && r.ctx.Err() == nil {
			s.running = true
			r.wg.Add(1)
			go r.follow(s, s.src)
		}
		out = append(out, s)
	}
	return out
}

func (r *Registry) reportSlot(s *slot, err error) {
	r.slotsMu.Lock()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	changed := msg != s.lastErr
	s.lastErr = msg
	r.slotsMu.Unlock()
	if err != nil && changed {
		r.report(err)
	}
}

func (r *Registry) report(err error) {
	if r.cfg.onError != nil && err != nil {
		r.cfg.onError(err)
	}
}

// follow runs a source's event stream, reconnecting with backoff; after a
// break it asks for a reconcile since events in between are lost.
func (r *Registry) follow(s *slot, src Source) {
	defer r.wg.Done()
	const minWait, maxWait = time.Second, 30 * time.Second
	wait, lastErr := minWait, ""
	for {
		started := time.Now()
		err := src.Events(r.ctx, func(ev Event) { r.handle(s, src, ev) })
		if r.ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrNoEvents) {
			r.report(err)
			return
		}
		r.slotsMu.Lock()
		off := s.off
		r.slotsMu.Unlock()
		if off || status.Code(err) == codes.Unimplemented {
			return // not this kind of runtime: Sync says so
		}
		if err != nil && err.Error() != lastErr {
			r.report(err)
		}
		if err != nil {
			lastErr = err.Error()
		}
		if time.Since(started) > maxWait {
			wait = minWait
		}
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, maxWait)
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

func (r *Registry) handle(s *slot, src Source, ev Event) {
	switch ev.Type {
	case EventStart:
		ctx, cancel := context.WithTimeout(r.ctx, r.cfg.lookupTimeout)
		in, err := src.Inspect(ctx, ev.ID)
		cancel()
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				r.report(err)
			}
			break
		}
		r.mu.Lock()
		r.put(s, in)
		r.stamp(in.ID)
		r.mu.Unlock()
	case EventDie, EventDestroy:
		r.mu.Lock()
		if e := r.entries[ev.ID]; e != nil {
			if e.deadAt.IsZero() {
				r.markDead(e)
			}
			r.stamp(ev.ID)
		}
		r.mu.Unlock()
	case EventRename:
		r.mu.Lock()
		if e := r.entries[ev.ID]; e != nil && ev.Name != "" {
			in := e.info
			in.Name = ev.Name
			in.Account = in.account()
			e.info = in
			r.stamp(ev.ID)
		}
		r.mu.Unlock()
	}
	if r.cfg.onEvent != nil {
		r.cfg.onEvent(ev)
	}
}

// stamp records that an event changed id's entry; r.mu is held.
func (r *Registry) stamp(id string) {
	r.seq++
	if e := r.entries[id]; e != nil {
		e.eventSeq = r.seq
	}
}

// apply records a source's list, taken when r.seq was seq: listed
// containers are alive, the source's other live entries died. Entries an
// event changed since seq are newer than the list and are left alone.
func (r *Registry) apply(s *slot, infos []Info, seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := make(map[string]bool, len(infos))
	for _, in := range infos {
		seen[in.ID] = true
		if e := r.entries[in.ID]; e != nil && e.eventSeq > seq {
			continue
		}
		r.put(s, in)
	}
	for id, e := range r.entries {
		if e.src == s && e.deadAt.IsZero() && !seen[id] && e.eventSeq <= seq {
			r.markDead(e)
		}
	}
}

// put inserts or replaces an entry; r.mu is held.
func (r *Registry) put(s *slot, in Info) {
	e := r.entries[in.ID]
	if e == nil {
		e = &entry{}
		e.elem = r.lru.PushFront(e)
		r.entries[in.ID] = e
	} else {
		r.lru.MoveToFront(e.elem)
	}
	e.info, e.src, e.expires = in, s, time.Time{}
	if s == nil {
		e.expires = r.now().Add(r.cfg.interval)
	}
	e.deadAt = time.Time{}
	if !in.Running && s != nil {
		e.deadAt = r.now()
	}
	r.indexPID(e, in.PID)
	for r.lru.Len() > r.cfg.max {
		r.remove(r.lru.Back().Value.(*entry))
	}
}

func (r *Registry) indexPID(e *entry, pid int) {
	if e.indexPID != 0 && r.byPID[e.indexPID] == e {
		delete(r.byPID, e.indexPID)
	}
	e.indexPID = pid
	if pid != 0 {
		r.byPID[pid] = e
	}
}

func (r *Registry) markDead(e *entry) {
	e.deadAt = r.now()
	e.info.Running = false
	e.info.PID = 0
	r.indexPID(e, 0)
}

func (r *Registry) remove(e *entry) {
	r.indexPID(e, 0)
	r.lru.Remove(e.elem)
	delete(r.entries, e.info.ID)
}

func (r *Registry) prune() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for _, e := range r.entries {
		if !e.deadAt.IsZero() && now.Sub(e.deadAt) > r.cfg.grace ||
			!e.expires.IsZero() && now.After(e.expires) {
			r.remove(e)
		}
	}
}

// Lookup returns the Info of the container a cgroup Ref names: from the
// cache, else by asking each present runtime (bounded by the lookup
// timeout), else a fallback Info with the Ref's runtime, id and short id as
// name, which is cached until the next reconcile. It reports false only for
// a zero Ref.
func (r *Registry) Lookup(ctx context.Context, ref Ref) (Info, bool) {
	if ref.IsZero() {
		return Info{}, false
	}
	for {
		r.mu.Lock()
		if e := r.entries[ref.ID]; e != nil && (e.expires.IsZero() || r.now().Before(e.expires)) {
			r.lru.MoveToFront(e.elem)
			in := e.info
			r.mu.Unlock()
			return in, true
		}
		wait, busy := r.inflight[ref.ID]
		if !busy {
			wait = make(chan struct{})
			r.inflight[ref.ID] = wait
		}
		r.mu.Unlock()
		if !busy {
			break
		}
		select {
		case <-wait: // another lookup filled the cache
		case <-ctx.Done():
			in := fallbackInfo(ref)
			in.Unanswered = true
			return in, true
		}
	}
	in, s := r.inspect(ctx, ref)
	r.mu.Lock()
	r.put(s, in)
	close(r.inflight[ref.ID])
	delete(r.inflight, ref.ID)
	r.mu.Unlock()
	return in, true
}

func (r *Registry) inspect(ctx context.Context, ref Ref) (Info, *slot) {
	if ref.Runtime == Nspawn || ref.Runtime == LXC {
		return fallbackInfo(ref), nil // no Docker API or CRI knows them
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.lookupTimeout)
	defer cancel()
	for _, s := range r.activeSlots() {
		in, err := s.src.Inspect(ctx, ref.ID)
		if err == nil {
			if in.PodUID == "" {
				in.PodUID = ref.PodUID
			}
			return in, s
		}
		if !errors.Is(err, ErrNotFound) {
			r.report(err)
		}
	}
	in := fallbackInfo(ref)
	in.Unanswered = true
	return in, nil
}

// LookupPID returns the Info of the container process pid belongs to, from
// its /proc/<pid>/cgroup, or, when that names no container, of the
// container whose init process it is. It reports false when pid is in no
// known container.
func (r *Registry) LookupPID(ctx context.Context, pid int) (Info, bool) {
	data, err := os.ReadFile(filepath.Join(r.cfg.procRoot, strconv.Itoa(pid), "cgroup"))
	if err == nil {
		if ref := FromCgroupFile(data); !ref.IsZero() {
			return r.Lookup(ctx, ref)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.byPID[pid]; e != nil {
		r.lru.MoveToFront(e.elem)
		return e.info, true
	}
	return Info{}, false
}

// Containers returns the cached Info of every container a runtime reported,
// running or within its grace period, in no particular order.
func (r *Registry) Containers() []Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Info, 0, len(r.entries))
	for _, e := range r.entries {
		if e.src != nil {
			out = append(out, e.info)
		}
	}
	return out
}
