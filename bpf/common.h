/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Shared by every netmeter BPF object: kernel types, libbpf helper
 * declarations and the license section. Include it first, exactly once, from
 * each bpf/<object>.c.
 */
#ifndef NETMETER_COMMON_H
#define NETMETER_COMMON_H

/*
 * -Wpadded guards our own map keys and values (which bpf2go mirrors to Go),
 * not the kernel's types, so silence it for vmlinux.h only.
 */
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wpadded"
#include "vmlinux.h"
#pragma clang diagnostic pop

#include <bpf/bpf_helpers.h>

/*
 * The kernel checks this string before letting a program call GPL-only
 * helpers. Every object is its own translation unit, so defining it here
 * gives each object exactly one copy.
 */
char __license[] SEC("license") = "Dual MIT/GPL";

/* cgroup_skb programs return 1 to let the packet through (0 drops it). */
#define CGROUP_SKB_ALLOW 1

/*
 * Counters that must stay exact use atomic adds even in per-CPU maps: with
 * preemptible kernels (PREEMPT_DYNAMIC can switch to full preemption) two
 * programs on the same CPU can interleave a plain read-modify-write.
 */
#define ATOMIC_ADD(ptr, val) __sync_fetch_and_add((ptr), (val))

#endif /* NETMETER_COMMON_H */
