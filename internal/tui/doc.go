// Package tui is netmeter's live terminal view of network interfaces, in the
// spirit of nload and bmon, built on Bubble Tea v2.
//
// The [Model] is pure: snapshots arrive as messages from a re-armed channel
// command ([WaitForSnapshot]), Update never does I/O and never mutates a
// previous Model's state, and View renders from the model alone. The model
// keeps a bounded rate and error/drop history per interface for sparklines
// and for highlighting counters that grew in the last interval. [Run] wires
// the model to a terminal in the alternate screen.
package tui
