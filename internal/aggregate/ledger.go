package aggregate

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/netmeter/netmeter/internal/quota"
	"github.com/netmeter/netmeter/internal/snapshot"
)

// Ledger keeps traffic totals per stable account (snapshot.Container.Account)
// and billing period. Together with the Flows state it is saved in one
// checkpoint file, so an agent restart neither loses nor double counts.
type Ledger struct {
	// BillingDay (1–28) is the day of the month a period starts.
	BillingDay int
	// Location is the time zone periods follow; nil is UTC.
	Location *time.Location

	mu       sync.Mutex
	accounts map[string]map[string]snapshot.Traffic // account → period → total
}

// NewLedger returns an empty ledger.
func NewLedger(billingDay int, loc *time.Location) (*Ledger, error) {
	if billingDay < 1 || billingDay > 28 {
		return nil, fmt.Errorf("billing day %d is outside 1..28", billingDay)
	}
	return &Ledger{BillingDay: billingDay, Location: loc, accounts: map[string]map[string]snapshot.Traffic{}}, nil
}

// Period names the billing period t falls in: the month in which it
// started, as "2006-01".
func (l *Ledger) Period(t time.Time) string {
	return l.PeriodStart(t).Format("2006-01")
}

// PeriodStart is when the billing period t falls in began: day BillingDay
// of its month, in Location (UTC if nil).
func (l *Ledger) PeriodStart(t time.Time) time.Time {
	return quota.MonthStart(t, l.BillingDay, cmp.Or(l.Location, time.UTC))
}

// Add books each container's last-interval traffic to its account.
func (l *Ledger) Add(now time.Time, ctrs []snapshot.Container) {
	p := l.Period(now)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range ctrs {
		if c.Delta == (snapshot.Traffic{}) || c.Account == "" {
			continue
		}
		m := l.accounts[c.Account]
		if m == nil {
			m = map[string]snapshot.Traffic{}
			l.accounts[c.Account] = m
		}
		m[p] = m[p].Add(c.Delta)
	}
}

// Entry is one account's total in one period.
type Entry struct {
	Account string           `json:"account"`
	Period  string           `json:"period"`
	Total   snapshot.Traffic `json:"total"`
}

// Entries returns the totals of period (every period if ""), by account.
func (l *Ledger) Entries(period string) []Entry {
	var out []Entry
	l.mu.Lock()
	defer l.mu.Unlock()
	for a, m := range l.accounts {
		for p, t := range m {
			if period == "" || p == period {
				out = append(out, Entry{Account: a, Period: p, Total: t})
			}
		}
	}
	slices.SortFunc(out, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.Period, b.Period), cmp.Compare(a.Account, b.Account))
	})
	return out
}

// Checkpoint is everything saved to continue after a restart.
type Checkpoint struct {
	Version    int                                    `json:"version"`
	BootID     string                                 `json:"boot_id"`
	SavedAt    time.Time                              `json:"saved_at"`
	BillingDay int                                    `json:"billing_day"`
	Accounts   map[string]map[string]snapshot.Traffic `json:"accounts"`
	Flows      *FlowState                             `json:"flows,omitempty"`
}

const checkpointVersion = 1

// BootID returns the kernel's boot id: per-socket counters are only valid
// within one boot.
func BootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("read boot id: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// SaveCheckpoint writes the ledger and the flows' per-socket state to path
// atomically (write, fsync, rename): a crash leaves the old or the new file,
// never half of one.
func SaveCheckpoint(path string, now time.Time, l *Ledger, f *Flows) error {
	boot, err := BootID()
	if err != nil {
		return err
	}
	cp := Checkpoint{Version: checkpointVersion, BootID: boot, SavedAt: now, BillingDay: l.BillingDay, Accounts: l.accounts}
	if f != nil {
		st := f.State()
		cp.Flows = &st
	}
	l.mu.Lock()
	data, err := json.Marshal(cp)
	l.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".checkpoint-*")
	if err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("save checkpoint %s: %w", path, err) // e.g. a full disk; the old file stays
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	return nil
}

// ErrCorrupt marks a checkpoint that cannot be read; it is kept aside, not
// overwritten, so nothing is lost.
var ErrCorrupt = errors.New("corrupt checkpoint")

// LoadCheckpoint reads path into l and, when it was saved in this boot, f.
// A missing file is not an error. A corrupt one is renamed to path.corrupt-
// <time> and reported with ErrCorrupt.
func LoadCheckpoint(path string, now time.Time, l *Ledger, f *Flows) (restoredSockets bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("load checkpoint: %w", err)
	}
	var cp Checkpoint
	if err := json.Unmarshal(data, &cp); err != nil || cp.Version != checkpointVersion {
		aside := fmt.Sprintf("%s.corrupt-%s", path, now.UTC().Format("20060102T150405Z"))
		if rerr := os.Rename(path, aside); rerr != nil {
			return false, fmt.Errorf("%w %s (%v); could not set it aside: %v", ErrCorrupt, path, err, rerr)
		}
		return false, fmt.Errorf("%w %s, kept as %s: %v", ErrCorrupt, path, aside, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for a, m := range cp.Accounts {
		dst := l.accounts[a]
		if dst == nil {
			dst = map[string]snapshot.Traffic{}
			l.accounts[a] = dst
		}
		for p, t := range m {
			dst[p] = dst[p].Add(t)
		}
	}
	boot, err := BootID()
	if err != nil {
		return false, err
	}
	if cp.Flows == nil || f == nil || cp.BootID != boot {
		return false, nil // after a reboot the kernel's counters restarted
	}
	f.Restore(now, *cp.Flows)
	return true, nil
}
