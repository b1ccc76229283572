package health

import (
	"cmp"
	"slices"
	"time"
)

// Topology is who talked to whom over a window: local entities and remote
// groups as nodes, one edge per flow. IDs are stable across calls, so a
// front end can diff two topologies.
type Topology struct {
	Time     time.Time `json:"time"`
	WindowMS int64     `json:"window_ms"`
	Nodes    []Node    `json:"nodes"` // by ID
	Edges    []Edge    `json:"edges"` // by ID
}

// Node is a local entity ("process:curl", "container:web") or a remote
// group ("group:10.1.2.0/24", "group:loopback").
type Node struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"` // "process", "container", "other", "group"
	Name    string `json:"name"`
	Account string `json:"account,omitempty"`
	PIDs    []int  `json:"pids,omitempty"`
	// TxBytes and RxBytes are the node's IP bytes over the window, from the
	// local side's view (tx: local → remote) for both kinds of node.
	TxBytes uint64 `json:"tx_bytes"`
	RxBytes uint64 `json:"rx_bytes"`
	// Health is a group's state ("" for local entities and for groups
	// without one).
	Health State `json:"health,omitempty"`
}

// Edge is one flow, local entity → remote group.
type Edge struct {
	ID             string  `json:"id"`     // as Flow.ID
	Source         string  `json:"source"` // a local entity's node ID
	Target         string  `json:"target"` // a group's node ID
	TxBytes        uint64  `json:"tx_bytes"`
	RxBytes        uint64  `json:"rx_bytes"`
	Connections    int     `json:"connections"`
	RTTMeanUS      int64   `json:"rtt_mean_us"`
	RetransSegs    uint64  `json:"retrans_segs"`
	RetransPercent float64 `json:"retrans_percent"`
	RTOs           uint64  `json:"rto_events"`
	Drops          uint64  `json:"drops"`
	Health         State   `json:"health,omitempty"` // the target group's state
}

// Topology returns the graph of the flows seen in the last window (see
// TopFlows for the window).
func (a *Analyzer) Topology(window time.Duration) Topology {
	a.mu.RLock()
	flows, span := a.sumFlows(window)
	t := Topology{Time: a.last, WindowMS: span.Milliseconds(), Nodes: []Node{}, Edges: make([]Edge, 0, len(flows))}
	a.mu.RUnlock()

	nodes := map[string]*Node{}
	node := func(n Node) *Node {
		if p := nodes[n.ID]; p != nil {
			return p
		}
		nodes[n.ID] = &n
		return &n
	}
	for i := range flows {
		f := &flows[i]
		src := node(Node{ID: f.Local.ID, Kind: f.Local.Kind, Name: f.Local.Name, Account: f.Local.Account})
		src.TxBytes += f.TxBytes
		src.RxBytes += f.RxBytes
		src.PIDs = append(src.PIDs, f.Local.PIDs...)
		dst := node(Node{ID: f.GroupID, Kind: "group", Name: f.Group, Health: f.Health})
		dst.TxBytes += f.TxBytes
		dst.RxBytes += f.RxBytes
		t.Edges = append(t.Edges, Edge{
			ID: f.ID, Source: f.Local.ID, Target: f.GroupID, TxBytes: f.TxBytes, RxBytes: f.RxBytes,
			Connections: f.Connections, RTTMeanUS: f.RTTMeanUS, RetransSegs: f.RetransSegs,
			RetransPercent: f.RetransPercent, RTOs: f.RTOs, Drops: f.Drops, Health: f.Health,
		})
	}
	for _, n := range nodes {
		slices.Sort(n.PIDs)
		n.PIDs = slices.Compact(n.PIDs)
		t.Nodes = append(t.Nodes, *n)
	}
	slices.SortFunc(t.Nodes, func(x, y Node) int { return cmp.Compare(x.ID, y.ID) })
	slices.SortFunc(t.Edges, func(x, y Edge) int { return cmp.Compare(x.ID, y.ID) })
	return t
}
