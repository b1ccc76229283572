package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeSource is a runtime held in memory: tests add and remove containers and
// push events.
type fakeSource struct {
	name string

	mu         sync.Mutex
	containers map[string]Info
	listErr    error
	inspects   map[string]int
	eventCalls int
	closed     bool

	events chan Event
	fail   chan error // a value ends the current Events call with it
}

func newFakeSource(name string, infos ...Info) *fakeSource {
	f := &fakeSource{name: name, containers: map[string]Info{}, inspects: map[string]int{},
		events: make(chan Event), fail: make(chan error)}
	for _, in := range infos {
		f.add(in)
	}
	return f
}

func (f *fakeSource) add(in Info) {
	in.fill()
	f.mu.Lock()
	f.containers[in.ID] = in
	f.mu.Unlock()
}

func (f *fakeSource) del(id string) {
	f.mu.Lock()
	delete(f.containers, id)
	f.mu.Unlock()
}

func (f *fakeSource) String() string { return "fake " + f.name }

func (f *fakeSource) List(context.Context) ([]Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	var out []Info
	for _, in := range f.containers {
		if in.Running {
			out = append(out, in)
		}
	}
	return out, nil
}

func (f *fakeSource) Inspect(_ context.Context, id string) (Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inspects[id]++
	in, ok := f.containers[id]
	if !ok {
		return Info{}, fmt.Errorf("%s: %w", f, ErrNotFound)
	}
	return in, nil
}

func (f *fakeSource) inspectCount(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inspects[id]
}

func (f *fakeSource) Events(ctx context.Context, fn func(Event)) error {
	f.mu.Lock()
	f.eventCalls++
	f.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-f.fail:
			return err
		case ev := <-f.events:
			fn(ev)
		}
	}
}

func (f *fakeSource) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	return nil
}

// send delivers an event and waits until the registry has handled it.
func (f *fakeSource) send(t *testing.T, handled <-chan Event, e Event) {
	t.Helper()
	select {
	case f.events <- e:
	case <-time.After(10 * time.Second):
		t.Fatal("registry does not follow events")
	}
	select {
	case <-handled:
	case <-time.After(10 * time.Second):
		t.Fatal("event not handled")
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func withClock(c *clock) Option {
	return func(cfg *config) error { cfg.now = c.now; return nil }
}

func hexID(n int) string { return fmt.Sprintf("%064x", n) }

func running(n int, name string, labels map[string]string) Info {
	return Info{Runtime: Docker, ID: hexID(n), Name: name, Labels: labels, Running: true, PID: 1000 + n}
}

// waitSynced waits for the Registry's first background reconcile, so that
// tests know what is cached.
func waitSynced(t *testing.T, r *Registry) {
	t.Helper()
	select {
	case <-r.synced:
	case <-time.After(10 * time.Second):
		t.Fatal("no first reconcile in 10 s")
	}
}

type harness struct {
	reg     *Registry
	src     *fakeSource
	clk     *clock
	handled chan Event

	mu   sync.Mutex
	errs []error
}

func newHarness(t *testing.T, opts ...Option) *harness {
	t.Helper()
	h := &harness{src: newFakeSource("a"), clk: &clock{t: time.Unix(1795430000, 0)}, handled: make(chan Event, 16)}
	opts = append([]Option{
		WithSources(h.src),
		withClock(h.clk),
		WithProcRoot(t.TempDir()),
		WithReconcileInterval(time.Hour), // tests call Sync
		WithGracePeriod(time.Minute),
		WithErrorHandler(func(err error) { h.mu.Lock(); h.errs = append(h.errs, err); h.mu.Unlock() }),
		WithEventHandler(func(e Event) { h.handled <- e }),
	}, opts...)
	r, err := NewRegistry(opts...)
	if err != nil {
		t.Fatal(err)
	}
	h.reg = r
	t.Cleanup(func() { _ = r.Close() })
	waitSynced(t, r)
	return h
}

func (h *harness) errors() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.errs...)
}

func (h *harness) lookup(t *testing.T, id string) Info {
	t.Helper()
	in, ok := h.reg.Lookup(testCtx(t), Ref{Runtime: Docker, ID: id})
	if !ok {
		t.Fatalf("Lookup(%s) reported no container", ShortID(id))
	}
	return in
}

func TestAccount(t *testing.T) {
	for _, tc := range []struct {
		in   Info
		want string
	}{
		{Info{Name: "db", Labels: map[string]string{LabelAccount: "billing", LabelComposeProject: "p", LabelComposeService: "s"}}, "billing"},
		{Info{Name: "p-s-1", Labels: map[string]string{LabelComposeProject: "p", LabelComposeService: "s"}}, "p/s"},
		{Info{Name: "x", Labels: map[string]string{LabelPodmanComposeProject: "pp", LabelPodmanComposeService: "ss"}}, "pp/ss"},
		{Info{Name: "nginx", PodName: "web-1", PodNamespace: "shop"}, "shop/web-1"},
		{Info{Name: "k8s_nginx", Labels: map[string]string{LabelPodName: "web-1", LabelPodNamespace: "shop"}}, "shop/web-1"},
		{Info{Name: "db"}, "db"},
		{Info{ID: hexID(7)}, hexID(7)[:12]},
		{Info{ID: "mymachine"}, "mymachine"},
	} {
		in := tc.in
		in.fill()
		if in.Account != tc.want {
			t.Errorf("Account of %+v = %q, want %q", tc.in, in.Account, tc.want)
		}
	}
}

func TestRegistryLookupAfterSync(t *testing.T) {
	h := newHarness(t)
	h.src.add(running(1, "web", map[string]string{LabelComposeProject: "shop", LabelComposeService: "frontend"}))
	if err := h.reg.Sync(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	in := h.lookup(t, hexID(1))
	if in.Name != "web" || in.Account != "shop/frontend" || !in.Running || in.PID != 1001 {
		t.Errorf("Lookup = %+v", in)
	}
	if n := h.src.inspectCount(hexID(1)); n != 0 {
		t.Errorf("a listed container was inspected %d times on lookup", n)
	}
	if got := h.reg.Containers(); len(got) != 1 || got[0].ID != hexID(1) {
		t.Errorf("Containers = %+v", got)
	}
}

// No runtime knows the container: the Ref's runtime and id with the short id
// as name, cached until the next reconcile interval.
func TestRegistryFallback(t *testing.T) {
	h := newHarness(t, WithReconcileInterval(time.Hour))
	id := hexID(2)
	ref := Ref{Runtime: Containerd, ID: id, PodUID: "1f0e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"}
	want := Info{Runtime: Containerd, ID: id, Name: id[:12], PodUID: ref.PodUID, Account: id[:12]}
	for range 3 {
		got, ok := h.reg.Lookup(testCtx(t), ref)
		if !ok || got.Runtime != want.Runtime || got.ID != want.ID || got.Name != want.Name || got.PodUID != want.PodUID || got.Account != want.Account || !got.Unanswered {
			t.Fatalf("Lookup = %+v, %v; want %+v, unanswered", got, ok, want)
		}
	}
	if n := h.src.inspectCount(id); n != 1 {
		t.Errorf("runtime asked %d times, want once (fallback cached)", n)
	}
	if in, _ := h.reg.Lookup(testCtx(t), Ref{Runtime: Nspawn, ID: "build-vm"}); in.Name != "build-vm" || in.Account != "build-vm" || in.Unanswered || h.src.inspectCount("build-vm") != 0 {
		t.Errorf("nspawn machine: %+v, runtime asked %d times (want 0)", in, h.src.inspectCount("build-vm"))
	}
	if _, ok := h.reg.Lookup(testCtx(t), Ref{}); ok {
		t.Error("Lookup of a zero Ref reported a container")
	}
	if len(h.reg.Containers()) != 0 {
		t.Error("Containers lists a fallback")
	}

	// After the interval the runtime is asked again; now it knows it.
	h.src.add(running(2, "late", nil))
	h.clk.add(time.Hour + time.Second)
	if in := h.lookup(t, id); in.Name != "late" || in.Unanswered {
		t.Errorf("Lookup after the fallback expired = %+v", in)
	}
}

// With no sockets at all, Lookup still answers with the fallback.
func TestRegistryNoRuntime(t *testing.T) {
	r, err := NewRegistry(WithDockerSockets(filepath.Join(t.TempDir(), "none.sock")), WithCRIEndpoints())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Sync(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	in, ok := r.Lookup(testCtx(t), Ref{Runtime: Podman, ID: hexID(3)})
	if !ok || in.Name != hexID(3)[:12] || in.Runtime != Podman {
		t.Fatalf("Lookup = %+v, %v", in, ok)
	}
}

// A container started since the last list is inspected on its first lookup
// and cached.
func TestRegistryLookupInspects(t *testing.T) {
	h := newHarness(t)
	h.src.add(running(4, "new", nil))
	for range 3 {
		if in := h.lookup(t, hexID(4)); in.Name != "new" {
			t.Fatalf("Lookup = %+v", in)
		}
	}
	if n := h.src.inspectCount(hexID(4)); n != 1 {
		t.Errorf("inspected %d times, want 1", n)
	}
}

// Concurrent lookups of one unknown container ask the runtime once.
func TestRegistryLookupConcurrent(t *testing.T) {
	h := newHarness(t)
	h.src.add(running(5, "busy", nil))
	var wg sync.WaitGroup
	var bad atomic.Int32
	for range 32 {
		wg.Go(func() {
			in, ok := h.reg.Lookup(context.Background(), Ref{ID: hexID(5)})
			if !ok || in.Name != "busy" {
				bad.Add(1)
			}
		})
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Errorf("%d lookups got a wrong answer", bad.Load())
	}
	if n := h.src.inspectCount(hexID(5)); n != 1 {
		t.Errorf("inspected %d times, want 1", n)
	}
}

// Events: start inspects, rename renames (and moves an account derived from
// the name), die keeps the entry for the grace period, then it goes.
func TestRegistryEvents(t *testing.T) {
	h := newHarness(t)
	id := hexID(6)
	h.src.add(running(6, "api", nil))
	h.src.send(t, h.handled, Event{Type: EventStart, Runtime: Docker, ID: id, Name: "api"})
	if n := h.src.inspectCount(id); n != 1 {
		t.Fatalf("start event inspected %d times", n)
	}
	if in := h.lookup(t, id); !in.Running || in.Account != "api" || in.PID != 1006 {
		t.Fatalf("after start: %+v", in)
	}

	h.src.add(running(6, "api2", nil))
	h.src.send(t, h.handled, Event{Type: EventRename, ID: id, Name: "api2", OldName: "api"})
	if in := h.lookup(t, id); in.Name != "api2" || in.Account != "api2" {
		t.Fatalf("after rename: %+v", in)
	}

	h.src.send(t, h.handled, Event{Type: EventDie, ID: id, Name: "api2", ExitCode: 137})
	h.src.del(id)
	in := h.lookup(t, id)
	if in.Running || in.PID != 0 || in.Name != "api2" {
		t.Fatalf("after die: %+v", in)
	}
	h.clk.add(30 * time.Second)
	if err := h.reg.Sync(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if in := h.lookup(t, id); in.Name != "api2" {
		t.Fatalf("within the grace period: %+v", in)
	}
	h.clk.add(31 * time.Second)
	if err := h.reg.Sync(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if in := h.lookup(t, id); in.Name != id[:12] {
		t.Fatalf("after the grace period: %+v, want the fallback", in)
	}
	if in, ok := h.reg.LookupPID(testCtx(t), 1006); ok {
		t.Errorf("the dead container's init pid still resolves: %+v", in)
	}
}

// A label account survives a rename.
func TestRegistryRenameKeepsLabelAccount(t *testing.T) {
	h := newHarness(t)
	h.src.add(running(7, "a", map[string]string{LabelAccount: "team"}))
	if err := h.reg.Sync(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	h.src.add(running(7, "b", map[string]string{LabelAccount: "team"}))
	h.src.send(t, h.handled, Event{Type: EventRename, ID: hexID(7), Name: "b"})
	if in := h.lookup(t, hexID(7)); in.Name != "b" || in.Account != "team" {
		t.Fatalf("after rename: %+v", in)
	}
}

// A container missing from a list died (its die event was lost).
func TestRegistryReconcileMarksDead(t *testing.T) {
	h := newHarness(t)
	h.src.add(running(8, "x", nil))
	h.src.add(running(9, "y", nil))
	if err := h.reg.Sync(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	h.src.del(hexID(8))
	if err := h.reg.Sync(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if in := h.lookup(t, hexID(8)); in.Running || in.Name != "x" {
		t.Errorf("vanished container: %+v, want kept, not running", in)
	}
	if in := h.lookup(t, hexID(9)); !in.Running {
		t.Errorf("listed container: %+v", in)
	}
}

func TestRegistryBounded(t *testing.T) {
	h := newHarness(t, WithMaxContainers(3))
	for i := range 5 {
		h.src.add(running(10+i, fmt.Sprint("c", i), nil))
	}
	if err := h.reg.Sync(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(h.reg.Containers()); n != 3 {
		t.Fatalf("cache holds %d, want 3", n)
	}
	h.reg.mu.Lock()
	n, idx := len(h.reg.entries), len(h.reg.byPID)
	h.reg.mu.Unlock()
	if n != 3 || idx != 3 {
		t.Fatalf("entries %d, pid index %d; want 3, 3", n, idx)
	}
	// An evicted container is still answered, from the runtime.
	for i := range 5 {
		if in := h.lookup(t, hexID(10+i)); in.Name != fmt.Sprint("c", i) {
			t.Errorf("Lookup c%d = %+v", i, in)
		}
	}
}

func TestRegistryLookupPID(t *testing.T) {
	proc := t.TempDir()
	write := func(pid int, cgroup string) {
		dir := filepath.Join(proc, fmt.Sprint(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup"), []byte(cgroup), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(4242, "12:cpu,cpuacct:/docker/"+hexID(20)+"\n0::/docker/"+hexID(20)+"\n")
	write(1, "0::/init.scope\n")
	write(1021, "0::/\n") // a container's init, in a cgroup namespace

	h := newHarness(t, WithProcRoot(proc))
	h.src.add(running(20, "web", nil))
	h.src.add(running(21, "nsinit", nil))
	if err := h.reg.Sync(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if in, ok := h.reg.LookupPID(testCtx(t), 4242); !ok || in.Name != "web" {
		t.Errorf("LookupPID(4242) = %+v, %v", in, ok)
	}
	if in, ok := h.reg.LookupPID(testCtx(t), 1021); !ok || in.Name != "nsinit" {
		t.Errorf("LookupPID(init pid) = %+v, %v", in, ok)
	}
	if in, ok := h.reg.LookupPID(testCtx(t), 1); ok {
		t.Errorf("LookupPID(1) = %+v, want no container", in)
	}
	if in, ok := h.reg.LookupPID(testCtx(t), 999999); ok {
		t.Errorf("LookupPID(absent) = %+v, want no container", in)
	}
}

// A broken event stream is reported once and reopened, and a reconcile
// follows since events may have been lost.
func TestRegistryEventsReconnect(t *testing.T) {
	h := newHarness(t)
	waitFor(t, func() bool { h.src.mu.Lock(); defer h.src.mu.Unlock(); return h.src.eventCalls == 1 })
	h.src.add(running(30, "during-outage", nil))
	h.src.fail <- errors.New("unexpected EOF")
	waitFor(t, func() bool { h.src.mu.Lock(); defer h.src.mu.Unlock(); return h.src.eventCalls == 2 })
	// The reconcile after the reconnect lists the container.
	waitFor(t, func() bool { return len(h.reg.Containers()) == 1 })
	if errs := h.errors(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "unexpected EOF") {
		t.Errorf("errors reported: %v", errs)
	}
}

// Listing errors go to the handler once until the source recovers.
func TestRegistryListErrors(t *testing.T) {
	h := newHarness(t)
	h.src.mu.Lock()
	h.src.listErr = errors.New("connection refused")
	h.src.mu.Unlock()
	for range 3 {
		if err := h.reg.Sync(testCtx(t)); err == nil {
			t.Fatal("Sync hid the list error")
		}
	}
	if n := len(h.errors()); n != 1 {
		t.Errorf("%d errors reported, want 1", n)
	}
	h.src.mu.Lock()
	h.src.listErr = nil
	h.src.mu.Unlock()
	if err := h.reg.Sync(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

// Sockets are found when they appear; a CRI endpoint that serves no
// RuntimeService (containerd without its CRI plugin) is dropped with one
// error.
func TestRegistryDiscovery(t *testing.T) {
	dir := t.TempDir()
	dockerSock := filepath.Join(dir, "docker.sock")
	noCRI := (*fakeCRI)(nil).serve(t)
	var mu sync.Mutex
	var errs []error
	r, err := NewRegistry(
		WithDockerSockets(dockerSock),
		WithCRIEndpoints(noCRI),
		WithReconcileInterval(time.Hour),
		WithErrorHandler(func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	waitSynced(t, r)
	mu.Lock()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "not used") {
		t.Errorf("errors after the first reconcile: %v, want the non-CRI endpoint's", errs)
	}
	mu.Unlock()
	if err := r.Sync(testCtx(t)); err != nil {
		t.Fatalf("Sync: %v (the non-CRI endpoint should be dropped)", err)
	}

	f := newFakeEngine(t, "testdata/docker20.10")
	f.inspect[webID] = "inspect-web.json"
	f.hold = true
	f.list = `[{"Id":"` + webID + `","Names":["/web"],"Image":"busybox:rec","State":"running"}]`
	if err := os.Symlink(f.socket, dockerSock); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	in, ok := r.Lookup(testCtx(t), Ref{Runtime: Docker, ID: webID})
	if !ok || in.Name != "web" || in.Account != "team-a" {
		t.Fatalf("Lookup through the discovered socket = %+v", in)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 1 {
		t.Errorf("errors reported: %v, want the non-CRI one", errs)
	}
}

func TestRegistryOptions(t *testing.T) {
	for _, o := range []Option{WithReconcileInterval(0), WithMaxContainers(0), WithGracePeriod(-1), WithLookupTimeout(0)} {
		if _, err := NewRegistry(o, WithSources()); err == nil {
			t.Error("NewRegistry accepted an invalid option")
		}
	}
}

func TestRegistryClose(t *testing.T) {
	h := newHarness(t)
	waitFor(t, func() bool { h.src.mu.Lock(); defer h.src.mu.Unlock(); return h.src.eventCalls == 1 })
	if err := h.reg.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.reg.Close(); err != nil {
		t.Fatal(err)
	}
	h.src.mu.Lock()
	closed := h.src.closed
	h.src.mu.Unlock()
	if !closed {
		t.Error("Close did not close the source")
	}
	// Lookups still answer.
	if in := h.lookup(t, hexID(40)); in.Name != hexID(40)[:12] {
		t.Errorf("Lookup after Close = %+v", in)
	}
}

// A list taken before an event does not undo it: the container that died
// stays dead, the renamed one keeps its new name.
func TestRegistryStaleListLosesToEvents(t *testing.T) {
	h := newHarness(t)
	h.src.add(running(50, "old", nil))
	h.src.add(running(51, "dying", nil))
	if err := h.reg.Sync(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	stale, _ := h.src.List(testCtx(t))
	h.reg.mu.Lock()
	seq := h.reg.seq
	s := h.reg.entries[hexID(50)].src
	h.reg.mu.Unlock()

	// The runtime moves on (a fresh list would agree with the events).
	h.src.add(running(50, "new", nil))
	h.src.del(hexID(51))
	h.src.send(t, h.handled, Event{Type: EventRename, ID: hexID(50), Name: "new"})
	h.src.send(t, h.handled, Event{Type: EventDie, ID: hexID(51)})
	h.reg.apply(s, stale, seq)

	if in := h.lookup(t, hexID(50)); in.Name != "new" {
		t.Errorf("renamed container after a stale list: %+v", in)
	}
	if in := h.lookup(t, hexID(51)); in.Running {
		t.Errorf("dead container after a stale list: %+v", in)
	}
}
