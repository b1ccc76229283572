// Package engine loads bpf/engine.c, attaches it at the cgroup2 root and
// reads per-socket counters: live sockets through a BPF iterator over the
// counter storage, dead ones through a ring buffer of final records, and
// traffic no socket owns from per-cgroup buckets.
package engine
