// Package tui is netmeter's live terminal view, built on Bubble Tea v2, with
// five views switched by 1 to 5: interfaces (in the spirit of nload and
// bmon), processes (nethogs), connections (iftop), containers (a "docker
// stats" for the network, with a detail pane of the traffic split by peer
// and per port) and health (the Network Health Indicator of every remote
// group and monitor, the top flows of the last 10 s and the busiest kernel
// drop reasons, read from an [Analysis] when a snapshot arrives).
//
// The [Model] is pure: snapshots arrive as messages from a re-armed channel
// command ([WaitForSnapshot]), Update never does I/O and never mutates a
// previous Model's state (the health view's [Analysis] is an in-memory read
// under the analyzer's lock), and View renders from the model alone. Reverse DNS
// lookups for the connections view run in commands on a bounded worker
// pool, through an injectable [Resolver], and come back as messages into a
// bounded cache whose clock is the snapshots' time. The model keeps a
// bounded rate and error/drop history per interface for sparklines and for
// highlighting counters that grew in the last interval, and caps the rows of
// the process, connection, container and flow lists ([Options].MaxRows). [Run]
// wires the model to a terminal in the alternate screen.
package tui
