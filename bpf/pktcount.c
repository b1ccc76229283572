/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * pktcount: packets and IP bytes (skb->len) seen by cgroup_skb ingress and
 * egress of the cgroup the programs are attached to. One per-CPU slot per
 * direction; userspace sums the CPUs. Never drops a packet.
 */
#include "common.h"

/* Map value; mirrored to Go by bpf2go (-type counters). */
struct counters {
	__u64 packets;
	__u64 bytes; /* skb->len: IP header + transport header + payload */
};

/* Keys of pkt_counts; mirrored to Go by bpf2go (-type direction). */
enum direction {
	DIRECTION_INGRESS = 0,
	DIRECTION_EGRESS = 1,
	DIRECTION_MAX = 2,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DIRECTION_MAX);
	__type(key, __u32);
	__type(value, struct counters);
} pkt_counts SEC(".maps");

/*
 * A real (not inlined) subprogram, so that its prototype puts enum direction
 * into BTF and bpf2go can mirror the keys to Go; the call costs a few
 * instructions. It adds no map (a global anchor variable would add .rodata).
 */
static __noinline void count(const struct __sk_buff *skb, enum direction dir)
{
	__u32 key = dir;
	struct counters *c = bpf_map_lookup_elem(&pkt_counts, &key);

	if (c) {
		ATOMIC_ADD(&c->packets, 1);
		ATOMIC_ADD(&c->bytes, skb->len);
	}
}

SEC("cgroup_skb/ingress")
int count_ingress(struct __sk_buff *skb)
{
	count(skb, DIRECTION_INGRESS);
	return CGROUP_SKB_ALLOW;
}

SEC("cgroup_skb/egress")
int count_egress(struct __sk_buff *skb)
{
	count(skb, DIRECTION_EGRESS);
	return CGROUP_SKB_ALLOW;
}
