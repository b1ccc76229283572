// Package output renders a [snapshot.Snapshot] for the non-interactive
// commands: `netmeter ifstat` (an aligned, human-readable [Table] of
// interfaces, like a cleaner `ip -s link`), `netmeter top` without a
// terminal ([Processes] like nethogs, [Connections] like iftop -t,
// [Containers] like a "docker stats" for the network), and JSON Lines for
// scripts ([JSON]).
//
// Tables round for humans unless [TableOptions.Exact] is set; JSON never
// rounds. The formatting helpers (FormatBytes, FormatRate, FormatEndpoint,
// ProgramName, BucketName, ContainerName, Printable, …) are shared with the TUI.
package output
