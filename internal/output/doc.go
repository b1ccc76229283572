// Package output renders a [snapshot.Snapshot] for the non-interactive
// `netmeter ifstat` command: an aligned, human-readable table (like a cleaner
// `ip -s link`) and JSON Lines for scripts.
//
// The table rounds for humans unless [TableOptions.Exact] is set; JSON never
// rounds. The FormatBytes and FormatRate helpers are shared with the TUI.
package output
