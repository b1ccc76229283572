// Package classic is netmeter's fallback engine for hosts where eBPF cannot
// load: the nethogs method, AF_PACKET capture joined to /proc/net/{tcp,udp}{,6}
// and /proc/<pid>/fd, producing the same per-socket cumulative counters as
// the eBPF engine (internal/source/engine) so that everything downstream
// works unchanged. Its results are approximate and marked so.
//
// What it does differently from nethogs and go-netflow:
//   - Direction is decided per socket by matching a packet's source and
//     destination against each socket's local and remote ends, so on lo one
//     packet is the sender socket's transmit and the receiver socket's
//     receive (the kernel hands the capture two copies of it; the outgoing
//     one is dropped in the kernel by a classic BPF filter).
//   - A socket is identified by its namespace and inode (Cookie = netns<<32 |
//     inode): each connection once, no collision between namespaces.
//   - Counters are cumulative; rates are made downstream over wall-clock
//     windows, so they fall to zero when traffic stops.
//   - Traffic no known socket matches waits in a bounded table of unknown
//     flows; a /proc scan triggered by it, or a later one, moves it to the
//     socket it finds. What stays unknown for a grace period goes to the
//     server's listener when one owns the port, else to the unattributed
//     bucket.
//   - Every table is bounded; what does not fit is counted as overflow.
//
// Byte semantics are the eBPF engine's: TxBytes/RxBytes are IP bytes (the
// packet's original length from the ring, so GSO super-packets and BIG TCP
// count in full), TxPayload/RxPayload are the L4 payload, packets are
// counted per captured skb.
package classic
