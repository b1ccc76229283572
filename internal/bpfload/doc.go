// Package bpfload prepares the process for loading eBPF objects and turns
// load and attach failures into typed errors that name what is missing and
// how to fix it.
//
// Every BPF source calls [Prepare] with its [Requirements] before loading,
// sizes its maps with [SetMaxEntries], and passes load and attach errors
// through [Wrap]. Callers branch on the result:
//
//   - errors.Is(err, ebpf.ErrNotSupported): the kernel lacks a feature
//     ([*FeatureError], [*BTFError]); fall back to the classic method.
//   - errors.As(err, new(*CapabilityError)): the process lacks privileges.
//   - errors.As(err, new(*MemlockError)): RLIMIT_MEMLOCK is too low.
//
// It also finds the cgroup2 mount that cgroup programs attach to
// ([Cgroup2Mount], [ResolveCgroup]).
package bpfload
