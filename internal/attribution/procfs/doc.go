// Package procfs turns the owner the kernel reports for a socket (a pid, and
// its start time) into what a user wants to see — command, executable,
// command line, user, parent, cgroups, network namespace — by reading
// /proc, and finds the owners of sockets that existed before netmeter
// started by scanning /proc/<pid>/fd (the nethogs method).
//
// [FS] reads one /proc tree; its root is injected so tests use fixture trees.
// Every reader is split into a fetch, which touches the file system, and a
// parse of bytes, which is fuzzed: comm is chosen by whoever runs the
// process, so nothing here trusts it.
//
// [Resolver] caches [Info] by pid and start time behind a bounded LRU; the
// engine may call [Resolver.Lookup] every interval for every pid it sees.
//
// A process that exits while it is being read yields an error for which
// errors.Is(err, os.ErrNotExist) holds. Reads of one process go through a
// directory descriptor of /proc/<pid>, so they never mix two processes that
// reused the same pid.
package procfs
