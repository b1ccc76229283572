// Package health is an aggregation stage downstream of the per-interval
// [snapshot.Snapshot]: snapshots in, flows, monitors, a Network Health
// Indicator and a topology out. It never reads the kernel.
//
// Each interval the [Analyzer] folds the snapshot's connections into flows
// keyed by (local entity, remote group): the local entity is the container
// the connection belongs to, else the process (by comm, so a program's
// restarts stay one entity); the remote group is the user's CIDR group that
// contains the remote address, else its /24 (IPv4) or /64 (IPv6), or
// "loopback". It keeps a bounded ring of per-interval aggregates (default
// 120 intervals) from which [Analyzer.TopFlows] and [Analyzer.Topology] sum
// any window, and time series for the user's [Monitor]s.
//
// The Network Health Indicator (see [State] and docs/HEALTH.md) compares each
// group's and monitor's recent RTT, retransmissions and timeouts with its own
// baseline, learned only while healthy, and with the other groups on the
// host, and uses the TCP windows, receive queues and kernel drop reasons to
// tell a slow network from an overloaded receiver on either end.
//
// Memory is bounded by [Config.MaxFlows] and [Config.MaxGroups]: what does
// not fit is summed into the reserved "other" group and counted, so a port
// scan cannot grow the tables.
package health
