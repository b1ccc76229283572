package aggregate

import (
	"time"

	"github.com/netmeter/netmeter/internal/attribution/container"
	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/source/engine"
)

// FlowState is what Flows needs to go on after a restart of the agent, when
// the engine was pinned and kept counting: the last cumulative counters it
// accounted per socket and bucket, and whom each socket belonged to.
type FlowState struct {
	Sockets  map[uint64]SavedSocket      `json:"sockets"`
	Timewait map[uint64]snapshot.Traffic `json:"timewait,omitempty"`
	Kernel   map[uint64]snapshot.Traffic `json:"kernel,omitempty"`
	Overflow snapshot.Traffic            `json:"overflow"`
}

// SavedSocket is one socket's accounted counters and owner.
type SavedSocket struct {
	Last      snapshot.Traffic                `json:"last"`
	HTTP      [len(engine.HTTPMethods)]uint32 `json:"http"`
	TGID      uint32                          `json:"tgid"`
	Start     uint64                          `json:"start"`
	Comm      string                          `json:"comm"`
	Container container.Ref                   `json:"container"`
	Dead      bool                            `json:"dead,omitempty"`
}

// State returns what Restore needs.
func (f *Flows) State() FlowState {
	st := FlowState{Sockets: make(map[uint64]SavedSocket, len(f.socks)), Timewait: f.tw, Kernel: f.kernel, Overflow: f.ovfl}
	for cookie, e := range f.socks {
		st.Sockets[cookie] = SavedSocket{Last: e.last, HTTP: e.http, TGID: e.owner.tgid, Start: e.owner.start, Comm: e.comm, Container: e.ctr, Dead: e.dead}
	}
	return st
}

// Restore continues from a saved state: the next readings count only what
// the kernel added since it was saved.
func (f *Flows) Restore(now time.Time, st FlowState) {
	for cookie, s := range st.Sockets {
		f.socks[cookie] = &sockEntry{last: s.Last, http: s.HTTP, owner: procKey{tgid: s.TGID, start: s.Start},
			comm: s.Comm, ctr: s.Container, dead: s.Dead, seen: now}
	}
	for k, v := range st.Timewait {
		f.tw[k] = v
	}
	for k, v := range st.Kernel {
		f.kernel[k] = v
	}
	f.ovfl = st.Overflow
}
