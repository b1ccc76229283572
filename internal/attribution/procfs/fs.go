package procfs

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// DefaultRoot is where procfs is mounted.
const DefaultRoot = "/proc"

// FS reads one procfs tree. Copies share its caches (boot time, user
// names); the zero FS reads /proc without caching.
type FS struct {
	root   string
	shared *shared
}

// shared is what copies of one FS share.
type shared struct {
	bootMu sync.Mutex
	boot   time.Time // zero until read once

	users *userCache
}

// NewFS returns an FS reading the procfs tree at root ("/proc" if empty).
// User names are looked up with os/user (which without cgo parses
// /etc/passwd) and cached; see [FS.WithUserLookup].
func NewFS(root string) FS {
	if root == "" {
		root = DefaultRoot
	}
	return FS{root: root, shared: &shared{users: newUserCache(lookupUser)}}
}

// WithUserLookup returns a copy of fs that names uids with lookup, e.g. a
// fake in tests or a reader of a container's /etc/passwd. Its results are
// cached; an error leaves [Info.User] empty.
func (fs FS) WithUserLookup(lookup func(uid uint32) (string, error)) FS {
	fs.shared = &shared{users: newUserCache(lookup)}
	return fs
}

// Root returns the procfs tree fs reads.
func (fs FS) Root() string {
	if fs.root == "" {
		return DefaultRoot
	}
	return fs.root
}

func (fs FS) path(elem ...string) string {
	return filepath.Join(append([]string{fs.Root()}, elem...)...)
}

// BootTime returns the "btime" of <root>/stat, the boot time to which
// process start times are relative, with one-second resolution. It is read
// once per FS.
func (fs FS) BootTime() (time.Time, error) {
	if fs.shared != nil {
		fs.shared.bootMu.Lock()
		defer fs.shared.bootMu.Unlock()
		if !fs.shared.boot.IsZero() {
			return fs.shared.boot, nil
		}
	}
	p := fs.path("stat")
	b, err := os.ReadFile(p)
	if err != nil {
		return time.Time{}, err // *PathError: "open /proc/stat: ..."
	}
	t, err := parseBootTime(b)
	if err != nil {
		return time.Time{}, &os.PathError{Op: "parse", Path: p, Err: err}
	}
	if fs.shared != nil {
		fs.shared.boot = t
	}
	return t, nil
}

// userName names uid, "" if unknown.
func (fs FS) userName(uid uint32) string {
	if fs.shared == nil {
		name, _ := lookupUser(uid)
		return name
	}
	return fs.shared.users.name(uid)
}

func lookupUser(uid uint32) (string, error) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return "", err
	}
	return u.Username, nil
}

// userCache remembers uid → name. Names found are kept; failures (an
// unknown uid, a passwd file being rewritten) are retried after
// userRetry. The cache is cleared when it reaches maxUsers entries, which a
// host's real users never do.
type userCache struct {
	lookup func(uint32) (string, error)
	now    func() time.Time

	mu sync.Mutex
	m  map[uint32]userEntry
}

type userEntry struct {
	name  string
	retry time.Time // zero: found, keep
}

const (
	maxUsers  = 4096
	userRetry = time.Minute
)

func newUserCache(lookup func(uint32) (string, error)) *userCache {
	return &userCache{lookup: lookup, now: time.Now, m: make(map[uint32]userEntry)}
}

func (c *userCache) name(uid uint32) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[uid]; ok && (e.retry.IsZero() || c.now().Before(e.retry)) {
		return e.name
	}
	// Looked up under the lock: a miss is rare and a second caller for the
	// same uid should wait for this answer rather than repeat it.
	name, err := c.lookup(uid)
	e := userEntry{name: name}
	if err != nil {
		e = userEntry{retry: c.now().Add(userRetry)}
	}
	if len(c.m) >= maxUsers {
		clear(c.m)
	}
	c.m[uid] = e
	return e.name
}
