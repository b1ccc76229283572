/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * netmeter capture: copies the packets of selected sockets to a ring buffer.
 *
 * cgroup_skb/ingress and cgroup_skb/egress see every packet a local socket
 * sends or receives (data starting at the IP header). A packet is kept when
 * its socket cookie is in `selected` (or when the config selects every
 * socket of the cgroup the programs are attached to), and then copied, up to
 * the snap length, with its owner, into `events`. The selection grows in the
 * kernel: cgroup/sock_create adds sockets that a selected process (by tgid,
 * or by comm) creates, and sockops adds connections accepted from a selected
 * listener (the listener's SYN is remembered by 4-tuple in `pending`);
 * cgroup/sendmsg and cgroup/connect add unbound sockets opened before the
 * start, which the userspace seed (sock_diag) cannot see.
 * With select_all, sock_create records every new socket's owner, so the
 * records of sockets created after the start name their process.
 */
#include "common.h"

#include <bpf/bpf_endian.h>

#define AF_INET	      2
#define AF_INET6      10
#define ETH_P_IP      0x0800
#define ETH_P_IPV6    0x86DD
#define IPPROTO_TCP   6
#define TASK_COMM_LEN 16

enum cap_direction {
	CAP_DIR_INGRESS = 1,
	CAP_DIR_EGRESS = 2,
};

enum cap_stat {
	CAP_STAT_CAPTURED = 0,
	CAP_STAT_RING_FULL = 1,
	CAP_STAT_SELECT_FULL = 2,
	CAP_STAT_LOAD_FAILED = 3,
	CAP_STAT_MAX = 4,
};

/* What userspace tells the programs; one entry at key 0. */
struct cap_config {
	__u32 snaplen;
	__u32 ifindex; /* 0: any */
	__u8 enabled;
	__u8 select_all;
	__u8 match_comm;
	__u8 pad;
	char comm[TASK_COMM_LEN];
};

/* Who owns a selected socket. */
struct owner {
	__u32 tgid;
	char comm[TASK_COMM_LEN];
};

/* One ring record; cap_len bytes of packet data follow it. */
struct cap_record {
	__u64 ts_ns; /* bpf_ktime_get_ns: CLOCK_MONOTONIC */
	__u64 cookie;
	__u32 ifindex;
	__u32 orig_len;
	__u32 cap_len;
	__u32 tgid;
	char comm[TASK_COMM_LEN];
	__u8 direction;
	__u8 pad[7];
};

/* A connection a selected listener received a SYN for; addresses IPv6 or
 * IPv4-mapped, in network byte order; ports in host byte order. */
struct conn_key {
	__u32 raddr[4];
	__u16 rport;
	__u16 lport;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cap_config);
} cap_config_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct owner);
} cap_selected SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} cap_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct conn_key);
	__type(value, struct owner);
} cap_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} cap_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CAP_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} cap_stats SEC(".maps");

/* Pointers (zero-initialised, in .bss) that put the record and direction
 * types into BTF for bpf2go; never used. */
struct cap_record *unused_cap_record __attribute__((unused));
enum cap_direction *unused_cap_direction __attribute__((unused));

static __noinline void count(enum cap_stat s)
{
	__u32 key = s;
	__u64 *v = bpf_map_lookup_elem(&cap_stats, &key);

	if (v)
		ATOMIC_ADD(v, 1);
}

static __always_inline struct cap_config *get_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&cap_config_map, &zero);
}

/*
 * A SYN arriving at a selected listener: remember its 4-tuple so that
 * sockops can select the accepted socket when it is established.
 */
static __always_inline void note_syn(struct __sk_buff *skb, struct owner *o)
{
	struct bpf_sock *sk = skb->sk;
	struct conn_key key = {};
	__u32 off;
	__u8 flags;
	__u16 ports[2];

	if (!sk)
		return;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->state != BPF_TCP_LISTEN)
		return;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		__u8 vihl, proto;

		if (bpf_skb_load_bytes(skb, 0, &vihl, 1) || bpf_skb_load_bytes(skb, 9, &proto, 1) ||
		    proto != IPPROTO_TCP || bpf_skb_load_bytes(skb, 12, &key.raddr[3], 4))
			return;
		key.raddr[2] = bpf_htonl(0xffff);
		off = (vihl & 0xf) * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		__u8 next;

		if (bpf_skb_load_bytes(skb, 6, &next, 1) || next != IPPROTO_TCP ||
		    bpf_skb_load_bytes(skb, 8, key.raddr, 16))
			return;
		off = 40;
	} else {
		return;
	}
	if (off < 20 || off > 60)
		return;
	if (bpf_skb_load_bytes(skb, off, ports, 4) || bpf_skb_load_bytes(skb, off + 13, &flags, 1))
		return;
	if ((flags & 0x12) != 0x02) /* SYN without ACK */
		return;
	key.rport = bpf_ntohs(ports[0]);
	key.lport = bpf_ntohs(ports[1]);
	bpf_map_update_elem(&cap_pending, &key, o, BPF_ANY);
}

/*
 * Reserve one of a few record sizes (powers of two), copy the packet and
 * submit it. The mask tells the verifier the copy is 1..size bytes long.
 */
#define EMIT_BUCKET(size)                                                                          \
	if (len <= (size)) {                                                                       \
		struct cap_record *r = bpf_ringbuf_reserve(&cap_events, sizeof(*r) + (size), 0);   \
		if (!r) {                                                                          \
			count(CAP_STAT_RING_FULL);                                                 \
			return CGROUP_SKB_ALLOW;                                                   \
		}                                                                                  \
		*r = hdr;                                                                          \
		if (bpf_skb_load_bytes(skb, 0, (void *)(r + 1), ((len - 1) & ((size)-1)) + 1) !=   \
		    0) {                                                                           \
			bpf_ringbuf_discard(r, 0);                                                 \
			count(CAP_STAT_LOAD_FAILED);                                               \
			return CGROUP_SKB_ALLOW;                                                   \
		}                                                                                  \
		bpf_ringbuf_submit(r, 0);                                                          \
		count(CAP_STAT_CAPTURED);                                                          \
		return CGROUP_SKB_ALLOW;                                                           \
	}

static __always_inline int capture(struct __sk_buff *skb, enum cap_direction dir)
{
	struct cap_config *cfg = get_config();
	struct cap_record hdr = {};
	struct owner *o;
	__u64 cookie;
	__u32 len;

	if (!cfg || !cfg->enabled)
		return CGROUP_SKB_ALLOW;
	if (cfg->ifindex && skb->ifindex != cfg->ifindex)
		return CGROUP_SKB_ALLOW;
	cookie = bpf_get_socket_cookie(skb);
	o = bpf_map_lookup_elem(&cap_selected, &cookie);
	if (o) {
		hdr.tgid = o->tgid;
		__builtin_memcpy(hdr.comm, o->comm, TASK_COMM_LEN);
		if (dir == CAP_DIR_INGRESS)
			note_syn(skb, o);
	} else if (!cfg->select_all) {
		return CGROUP_SKB_ALLOW;
	}
	hdr.ts_ns = bpf_ktime_get_ns();
	hdr.cookie = cookie;
	hdr.ifindex = skb->ifindex;
	hdr.orig_len = skb->len;
	hdr.direction = dir;
	len = skb->len;
	if (len > cfg->snaplen)
		len = cfg->snaplen;
	if (len > 65536)
		len = 65536;
	if (len == 0)
		return CGROUP_SKB_ALLOW;
	hdr.cap_len = len;
	EMIT_BUCKET(128)
	EMIT_BUCKET(2048)
	EMIT_BUCKET(16384)
	EMIT_BUCKET(65536)
	return CGROUP_SKB_ALLOW;
}

SEC("cgroup_skb/ingress")
int capture_ingress(struct __sk_buff *skb)
{
	return capture(skb, CAP_DIR_INGRESS);
}

SEC("cgroup_skb/egress")
int capture_egress(struct __sk_buff *skb)
{
	return capture(skb, CAP_DIR_EGRESS);
}

static __always_inline int comm_equal(const char *a, const char *b)
{
	for (int i = 0; i < TASK_COMM_LEN; i++) {
		if (a[i] != b[i])
			return 0;
		if (a[i] == 0)
			return 1;
	}
	return 1;
}

static __always_inline void select_cookie(__u64 cookie, struct owner *o)
{
	if (bpf_map_update_elem(&cap_selected, &cookie, o, BPF_ANY))
		count(CAP_STAT_SELECT_FULL);
}

/*
 * In process context: select the socket when the current process is
 * selected (by tgid or comm, or everyone with select_all).
 */
static __always_inline void select_if_current(__u64 cookie)
{
	struct cap_config *cfg = get_config();
	struct owner o = {};
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (!cfg || !cfg->enabled)
		return;
	bpf_get_current_comm(o.comm, sizeof(o.comm));
	/* With select_all the map only names owners in the records. */
	if (!cfg->select_all && !bpf_map_lookup_elem(&cap_pids, &tgid) &&
	    !(cfg->match_comm && comm_equal(o.comm, cfg->comm)))
		return;
	if (bpf_map_lookup_elem(&cap_selected, &cookie))
		return;
	o.tgid = tgid;
	select_cookie(cookie, &o);
}

/* A socket created by a selected process joins the selection. */
SEC("cgroup/sock_create")
int capture_sock_create(struct bpf_sock *ctx)
{
	select_if_current(bpf_get_socket_cookie(ctx));
	return 1;
}

/*
 * Sockets a selected process opened before the start but had not bound (a
 * UDP socket before its first sendto, a TCP socket before connect) are not
 * in sock_diag, so the seed misses them: these hooks, which run before the
 * first packet leaves, catch them.
 */
SEC("cgroup/sendmsg4")
int capture_sendmsg4(struct bpf_sock_addr *ctx)
{
	select_if_current(bpf_get_socket_cookie(ctx));
	return 1;
}

SEC("cgroup/sendmsg6")
int capture_sendmsg6(struct bpf_sock_addr *ctx)
{
	select_if_current(bpf_get_socket_cookie(ctx));
	return 1;
}

SEC("cgroup/connect4")
int capture_connect4(struct bpf_sock_addr *ctx)
{
	select_if_current(bpf_get_socket_cookie(ctx));
	return 1;
}

SEC("cgroup/connect6")
int capture_connect6(struct bpf_sock_addr *ctx)
{
	select_if_current(bpf_get_socket_cookie(ctx));
	return 1;
}

/* A connection accepted from a selected listener joins the selection. */
SEC("sockops")
int capture_sockops(struct bpf_sock_ops *skops)
{
	struct conn_key key = {};
	struct owner *o;
	__u32 family, rport, lport, r4, r6[4];

	if (skops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	/*
	 * Read every context field once, unconditionally: the verifier
	 * refuses a context pointer the compiler moved to a field and then
	 * indexed.
	 */
	family = skops->family;
	rport = skops->remote_port;
	lport = skops->local_port;
	r4 = skops->remote_ip4;
	r6[0] = skops->remote_ip6[0];
	r6[1] = skops->remote_ip6[1];
	r6[2] = skops->remote_ip6[2];
	r6[3] = skops->remote_ip6[3];
	if (family == AF_INET) {
		key.raddr[2] = bpf_htonl(0xffff);
		key.raddr[3] = r4;
	} else if (family == AF_INET6) {
		__builtin_memcpy(key.raddr, r6, sizeof(r6));
	} else {
		return 1;
	}
	key.rport = bpf_ntohl(rport);
	key.lport = lport;
	o = bpf_map_lookup_elem(&cap_pending, &key);
	if (!o)
		return 1;
	select_cookie(bpf_get_socket_cookie(skops), o);
	bpf_map_delete_elem(&cap_pending, &key);
	return 1;
}
