/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * health: how well TCP flows, and why packets are lost.
 *
 * Nothing here runs per data packet. The kernel already keeps most of what
 * a health view needs in struct tcp_sock (smoothed RTT, cwnd, segments,
 * retransmissions, timeouts); dump_health reads it when userspace asks.
 * What tcp_sock does not keep comes from rare events:
 *   - sock_ops: SYN sent and ESTABLISHED (handshake time, and the per-socket
 *     callback flags), RTT samples (RTT_CB: the kernel calls it once per
 *     round trip, when an ACK passes the mark set one RTT earlier; optional),
 *     RTO firings, state changes;
 *   - tcp_retransmit_skb: splits retransmitted segments into fast (and tail
 *     loss probe) vs after a timeout, by the congestion state at the time;
 *   - tcp_send_reset / tcp_receive_reset: resets per connection;
 *   - kfree_skb: every dropped packet with the kernel's drop reason, per
 *     interface, namespace, protocol and socket;
 *   - tcp_destroy_sock: a final record through a ring buffer.
 * Nothing here trusts packet contents: the only packet bytes read are the
 * IP protocol field of a dropped packet, used as a label.
 */
#include "common.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>

#define IPPROTO_TCP 6
#define ETH_P_IP    0x0800
#define ETH_P_IPV6  0x86DD
#define TCP_CA_LOSS 4

/* Set by userspace before load: take RTT samples (one callback per ACK). */
const volatile __u8 rtt_samples = 1;

/* What the hooks add to a TCP socket; tcp_sock has the rest. */
struct health {
	__u64 syn_ns; /* client: when the SYN went out */
	__u64 rtt_sum_us;
	__u64 rtt_samples;
	__u64 fast_retrans; /* segments retransmitted outside timeout recovery */
	__u64 rto_retrans;  /* segments retransmitted in loss (timeout) recovery */
	__u64 rto_events;   /* RTO timer firings seen by sock_ops */
	__u64 win_sum_us;   /* RTT samples in this window: sum */
	__u32 epoch;	    /* read_epoch when the window below began */
	__u32 win_samples;  /* RTT samples in this window */
	__u32 win_min_us;
	__u32 win_max_us;
	__u32 last_total_retrans; /* tcp_sock.total_retrans at the last split */
	__u32 setup_us;
	__u32 resets_sent;
	__u32 resets_received;
	__u32 state_changes;
	__u32 flags; /* enum health_flag */
};

enum health_flag {
	HFLAG_OPENED = 1,  /* seen opening (SYN sent or handshake done) */
	HFLAG_ADOPTED = 2, /* found by the adoption iterator, already open */
};

/* One TCP socket's health, as userspace sees it. */
struct health_record {
	__u64 cookie;
	struct health h;
	__u32 srtt_us; /* tcpi_rtt */
	__u32 rttvar_us;
	__u32 min_rtt_us;
	__u32 cwnd;
	__u32 ssthresh;
	__u32 snd_wnd;
	__u32 rcv_wnd;
	__u32 rcv_queue;
	__u32 snd_queue;
	__u32 lost_out;
	__u32 retrans_out;
	__u32 segs_out;
	__u32 segs_in;
	__u32 data_segs_out;
	__u32 data_segs_in;
	__u32 total_retrans;
	__u32 total_rto;
	__u32 netns;
	__u8 ca_state;
	__u8 state;
	__u8 dead;
	__u8 _pad[5];
};

/* kfree_skb aggregation key. */
struct drop_key {
	__u64 cookie; /* socket, 0 when none */
	__u32 reason; /* enum skb_drop_reason */
	__u32 ifindex;
	__u32 netns;
	__u16 family; /* 4, 6, 0 */
	__u8 proto;   /* IPPROTO_*, 0 unknown */
	__u8 _pad;
};

struct drop_count {
	__u64 packets;
	__u64 bytes;
};

enum health_stat {
	HSTAT_RING_FULL = 0,   /* a final record was lost */
	HSTAT_DROPS_FULL = 1,  /* drop_counts full: counted without socket/interface */
	HSTAT_DROPS_LOST = 2,  /* not even that: only counted here */
	HSTAT_RST_NO_SOCK = 3, /* resets sent for no full socket (timewait, closed port) */
	HSTAT_MAX = 4,
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct health);
} health_store SEC(".maps");

/* Userspace bumps it after each dump: RTT min/max restart per window. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} read_epoch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct drop_key);
	__type(value, struct drop_count);
} drop_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HSTAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} health_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} health_deaths SEC(".maps");

struct health_record *unused_health_record __attribute__((unused));
enum health_flag *unused_health_flag __attribute__((unused));
enum health_stat *unused_health_stat __attribute__((unused));

static __always_inline void hbump(enum health_stat s)
{
	__u32 key = s;
	__u64 *v = bpf_map_lookup_elem(&health_stats, &key);

	if (v)
		ATOMIC_ADD(v, 1);
}

static __always_inline __u32 epoch_now(void)
{
	__u32 key = 0;
	__u32 *e = bpf_map_lookup_elem(&read_epoch, &key);

	return e ? *e : 0;
}

SEC("sockops")
int tcp_ops(struct bpf_sock_ops *ops)
{
	struct bpf_sock *sk = ops->sk;
	struct health *h;
	__u32 flags, rtt;

	if (!sk)
		return 1;
	switch (ops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		h = bpf_sk_storage_get(&health_store, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (h) {
			h->syn_ns = bpf_ktime_get_ns();
			h->flags |= HFLAG_OPENED;
		}
		return 1;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		h = bpf_sk_storage_get(&health_store, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (!h)
			return 1;
		if (ops->op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB) {
			if (h->syn_ns)
				h->setup_us = (bpf_ktime_get_ns() - h->syn_ns) / 1000;
		} else {
			h->setup_us = ops->srtt_us >> 3; /* the SYN-ACK's round trip */
		}
		h->last_total_retrans = ops->total_retrans;
		h->flags |= HFLAG_OPENED;
		flags = BPF_SOCK_OPS_RTO_CB_FLAG | BPF_SOCK_OPS_STATE_CB_FLAG;
		if (rtt_samples)
			flags |= BPF_SOCK_OPS_RTT_CB_FLAG;
		bpf_sock_ops_cb_flags_set(ops, flags);
		return 1;
	case BPF_SOCK_OPS_RTT_CB:
		h = bpf_sk_storage_get(&health_store, sk, 0, 0);
		if (!h)
			return 1;
		rtt = ops->args[0]; /* this sample, µs */
		if (h->epoch != epoch_now() || !h->win_samples) {
			h->epoch = epoch_now();
			h->win_samples = 0;
			h->win_sum_us = 0;
			h->win_min_us = rtt;
			h->win_max_us = rtt;
		}
		if (rtt < h->win_min_us)
			h->win_min_us = rtt;
		if (rtt > h->win_max_us)
			h->win_max_us = rtt;
		h->win_samples++;
		h->win_sum_us += rtt;
		h->rtt_samples++;
		h->rtt_sum_us += rtt;
		return 1;
	case BPF_SOCK_OPS_RTO_CB:
		h = bpf_sk_storage_get(&health_store, sk, 0, 0);
		if (h)
			ATOMIC_ADD(&h->rto_events, 1);
		return 1;
	case BPF_SOCK_OPS_STATE_CB:
		h = bpf_sk_storage_get(&health_store, sk, 0, 0);
		if (h)
			ATOMIC_ADD(&h->state_changes, 1);
		return 1;
	}
	return 1;
}

/*
 * Every retransmission adds its segments to tcp_sock.total_retrans before
 * this tracepoint; the difference since the last one is this skb's share.
 * In TCP_CA_Loss the sender is recovering from a timeout; otherwise it is a
 * fast retransmit, SACK recovery or a tail loss probe.
 */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(retransmit, struct sock *sk)
{
	struct inet_connection_sock *icsk;
	struct tcp_sock *tp;
	struct health *h;
	__u32 total, delta;
	__u8 ca;

	h = bpf_sk_storage_get(&health_store, sk, 0, 0);
	if (!h)
		return 0;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return 0;
	total = tp->total_retrans;
	delta = total - h->last_total_retrans;
	h->last_total_retrans = total;
	icsk = (struct inet_connection_sock *)tp;
	ca = BPF_CORE_READ_BITFIELD(icsk, icsk_ca_state);
	if (ca == TCP_CA_LOSS)
		ATOMIC_ADD(&h->rto_retrans, delta);
	else
		ATOMIC_ADD(&h->fast_retrans, delta);
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(send_reset, struct sock *sk)
{
	struct health *h = 0;

	if (sk)
		h = bpf_sk_storage_get(&health_store, sk, 0, 0);
	if (h)
		ATOMIC_ADD(&h->resets_sent, 1);
	else
		hbump(HSTAT_RST_NO_SOCK);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(receive_reset, struct sock *sk)
{
	struct health *h = bpf_sk_storage_get(&health_store, sk, 0, 0);

	if (h)
		ATOMIC_ADD(&h->resets_received, 1);
	return 0;
}

/* The IP protocol of a packet: from its socket, else one header byte. */
static __always_inline __u8 l4proto(struct sk_buff *skb, struct sock *sk, __u16 family)
{
	unsigned char *head;
	__u16 nh;
	__u8 p = 0;

	if (sk && sk->__sk_common.skc_state != BPF_TCP_TIME_WAIT &&
	    sk->__sk_common.skc_state != BPF_TCP_NEW_SYN_RECV)
		return sk->sk_protocol;
	if (!family)
		return 0;
	nh = skb->network_header;
	if (nh == (__u16)~0U)
		return 0;
	head = skb->head;
	bpf_probe_read_kernel(&p, 1, head + nh + (family == 4 ? 9 : 6));
	return p;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(drop, struct sk_buff *skb, void *location, enum skb_drop_reason reason,
	     struct sock *rx_sk)
{
	struct drop_key key = {};
	struct drop_count *c;
	struct net_device *dev;
	struct sock *sk;
	__u16 proto;

	if (reason <= SKB_CONSUMED)
		return 0;
	sk = rx_sk ? rx_sk : skb->sk;
	key.reason = reason;
	proto = bpf_ntohs(skb->protocol);
	if (proto == ETH_P_IP)
		key.family = 4;
	else if (proto == ETH_P_IPV6)
		key.family = 6;
	key.proto = l4proto(skb, sk, key.family);
	dev = skb->dev;
	if (dev) {
		key.ifindex = dev->ifindex;
		key.netns = dev->nd_net.net->ns.inum;
	} else {
		key.ifindex = skb->skb_iif;
	}
	if (rx_sk) {
		key.cookie = bpf_get_socket_cookie(rx_sk);
	} else if (sk) {
		/*
		 * skb->sk is not a trusted pointer for the cookie helper: take the
		 * cookie the socket already has (the engine's dumps give every
		 * socket one), 0 if it never got one.
		 */
		key.cookie = sk->__sk_common.skc_cookie.counter;
	}
	if (sk && !key.netns)
		key.netns = sk->__sk_common.skc_net.net->ns.inum;
	c = bpf_map_lookup_elem(&drop_counts, &key);
	if (!c) {
		struct drop_count zero = {};

		if (bpf_map_update_elem(&drop_counts, &key, &zero, BPF_NOEXIST)) {
			/* Full: keep the reason, lose the place. */
			hbump(HSTAT_DROPS_FULL);
			key.cookie = 0;
			key.ifindex = 0;
			key.netns = 0;
			bpf_map_update_elem(&drop_counts, &key, &zero, BPF_NOEXIST);
		}
		c = bpf_map_lookup_elem(&drop_counts, &key);
		if (!c) {
			hbump(HSTAT_DROPS_LOST);
			return 0;
		}
	}
	ATOMIC_ADD(&c->packets, 1);
	ATOMIC_ADD(&c->bytes, skb->len);
	return 0;
}

static __always_inline void describe(struct health_record *r, struct sock *sk, struct health *h)
{
	struct inet_connection_sock *icsk;
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);

	r->cookie = bpf_get_socket_cookie(sk);
	r->h = *h;
	r->state = sk->__sk_common.skc_state;
	r->netns = sk->__sk_common.skc_net.net->ns.inum;
	if (!tp)
		return;
	icsk = (struct inet_connection_sock *)tp;
	r->srtt_us = tp->srtt_us >> 3;
	r->rttvar_us = tp->mdev_us >> 2;
	r->min_rtt_us = tp->rtt_min.s[0].v;
	r->cwnd = tp->snd_cwnd;
	r->ssthresh = tp->snd_ssthresh;
	r->snd_wnd = tp->snd_wnd;
	r->rcv_wnd = tp->rcv_wnd;
	r->rcv_queue = tp->rcv_nxt - tp->copied_seq;
	r->snd_queue = tp->write_seq - tp->snd_una;
	r->lost_out = tp->lost_out;
	r->retrans_out = tp->retrans_out;
	r->segs_out = tp->segs_out;
	r->segs_in = tp->segs_in;
	r->data_segs_out = tp->data_segs_out;
	r->data_segs_in = tp->data_segs_in;
	r->total_retrans = tp->total_retrans;
	if (bpf_core_field_exists(tp->total_rto))
		r->total_rto = BPF_CORE_READ(tp, total_rto);
	else
		r->total_rto = h->rto_events;
	r->ca_state = BPF_CORE_READ_BITFIELD(icsk, icsk_ca_state);
}

SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(health_destroy, struct sock *sk)
{
	struct health *h = bpf_sk_storage_get(&health_store, sk, 0, 0);
	struct health_record *r;

	if (!h)
		return 0;
	r = bpf_ringbuf_reserve(&health_deaths, sizeof(*r), 0);
	if (!r) {
		hbump(HSTAT_RING_FULL);
		return 0;
	}
	__builtin_memset(r, 0, sizeof(*r));
	describe(r, sk, h);
	r->dead = 1;
	bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("iter/bpf_sk_storage_map")
int dump_health(struct bpf_iter__bpf_sk_storage_map *ctx)
{
	struct sock *sk = ctx->sk;
	struct health *h = ctx->value;
	struct health_record r = {};

	if (!sk || !h)
		return 0;
	describe(&r, sk, h);
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}

/* TCP sockets older than the health hooks: tcp_sock has their numbers. */
SEC("iter/tcp")
int adopt_health(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct tcp_sock *tp;
	struct health *h;

	if (!skc)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp || tp->inet_conn.icsk_inet.sk.__sk_common.skc_state == BPF_TCP_LISTEN)
		return 0;
	h = bpf_sk_storage_get(&health_store, (struct sock *)tp, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (h && !(h->flags & (HFLAG_OPENED | HFLAG_ADOPTED))) {
		h->last_total_retrans = tp->total_retrans;
		h->flags |= HFLAG_ADOPTED;
	}
	return 0;
}
