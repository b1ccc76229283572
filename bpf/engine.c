/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * engine: every byte to its socket, every socket to its process.
 *
 * Count in the kernel, per socket, and let userspace read the totals:
 *   - cgroup/sock_create stamps the creating process into owner_store (cloned
 *     into accepted sockets, which never pass sock_create);
 *   - sock_send_length / sock_recv_length (process context) re-stamp the
 *     owner when another process uses the socket and count payload bytes;
 *   - cgroup_skb egress/ingress add IP bytes and packets to count_store, a
 *     second storage that is NOT cloned (a cloned counter would copy the
 *     listener's running totals into every accepted socket);
 *   - non-full sockets: a request socket's bytes (SYN-ACK) go to its
 *     listener, a timewait socket's to tw_counts under the cookie it kept
 *     from its full socket, anything else to kernel_counts by cgroup;
 *   - tcp_destroy_sock (TCP) and cgroup/sock_release (others) send one final
 *     record per socket through a ring buffer, so short-lived sockets are
 *     never lost between two reads;
 *   - dump_sockets, an iterator over count_store, gives userspace every live
 *     socket's record on demand.
 * Nothing here trusts packet contents: no packet byte is read.
 */
#include "common.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>

#define AF_INET	      2
#define AF_INET6      10
#define IPPROTO_TCP   6
#define TASK_COMM_LEN 16

/* Who created or last used a socket from process context. */
struct owner {
	__u64 cgroup_id;
	__u64 start_boottime; /* group leader's, ns since boot: tells PID reuse apart */
	__u32 tgid;
	__u32 pid;
	__u32 uid;
	__u32 netns; /* inode of the creating task's network namespace */
	char comm[TASK_COMM_LEN];
};

/* Addresses in network byte order, ports in host byte order. */
struct tuple {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u16 _pad;
};

/* HTTP/1.x methods counted at the start of inbound TCP payload. */
enum http_method {
	HTTP_GET = 0,
	HTTP_HEAD = 1,
	HTTP_POST = 2,
	HTTP_PUT = 3,
	HTTP_DELETE = 4,
	HTTP_CONNECT = 5,
	HTTP_OPTIONS = 6,
	HTTP_TRACE = 7,
	HTTP_PATCH = 8,
	HTTP_METHODS = 9,
};

/*
 * Running totals of one socket, and its last known addresses: the kernel
 * clears the local port when a socket closes, before the final record.
 */
struct counts {
	__u64 payload_tx; /* application bytes, send/recv syscalls */
	__u64 payload_rx;
	__u64 ip_tx; /* skb->len at cgroup_skb: IP + transport headers + payload */
	__u64 ip_rx;
	__u64 pkt_tx;
	__u64 pkt_rx;
	struct tuple last;
	__u8 role;	 /* enum tcp_role */
	__u8 http_ready; /* server: the next data segment may begin an HTTP/1.x request */
	__u8 seq_init;	 /* TCP: seq_mark is set */
	__u8 fin_seen;	 /* TCP: the peer's FIN was consumed (it advances copied_seq by one) */
	__u8 _pad[4];
	__u32 http[HTTP_METHODS]; /* HTTP/1.x request lines seen, by enum http_method */
	__u32 seq_mark;		  /* TCP: copied_seq at the last count */
};

/* Which end of a TCP connection a socket is, from its handshake. */
enum tcp_role {
	ROLE_UNKNOWN = 0, /* not TCP, or opened before the engine */
	ROLE_CLIENT = 1,  /* active open: went SYN_SENT → ESTABLISHED */
	ROLE_SERVER = 2,  /* passive open: born in SYN_RECV from a listener */
};

enum record_kind {
	RECORD_LIVE = 0, /* from dump_sockets */
	RECORD_DEAD = 1, /* final, from the ring buffer */
};

/* One socket, as userspace sees it. Addresses in network byte order. */
struct sock_record {
	__u64 cookie;
	__u64 ino;	   /* socket inode (0 once the socket has no file) */
	__u64 bytes_acked; /* TCP only */
	__u64 bytes_received;
	struct owner owner;
	struct counts counts;
	struct tuple tuple;
	__u32 netns; /* inode of the socket's network namespace */
	__u16 protocol;
	__u8 state;
	__u8 kind;
	__u8 has_owner;
	__u8 _pad[7];
};

enum direction {
	DIR_EGRESS = 0,
	DIR_INGRESS = 1,
};

/* kernel_counts key: traffic no process owns, per cgroup and direction. */
struct bucket_key {
	__u64 cgroup_id;
	__u32 dir;
	__u32 _pad;
};

struct traffic_bucket {
	__u64 bytes;
	__u64 packets;
};

/* tw_counts key: a timewait socket's cookie (that of its full socket). */
struct tw_key {
	__u64 cookie;
	__u32 dir;
	__u32 _pad;
};

enum engine_stat {
	STAT_COUNT_STORE_FAIL = 0, /* counter storage could not be created */
	STAT_RING_FULL = 1,	   /* a final record was lost; the last dump has the rest */
	STAT_TW_FULL = 2,	   /* tw_counts full: bytes went to kernel_counts */
	STAT_BUCKET_FULL = 3,	   /* kernel_counts full: bytes went to the overflow slot */
	STAT_MAX = 4,
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct owner);
} owner_store SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct counts);
} count_store SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct tw_key);
	__type(value, struct traffic_bucket);
} tw_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct bucket_key);
	__type(value, struct traffic_bucket);
} kernel_counts SEC(".maps");

/* One slot per direction for what kernel_counts could not hold. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct traffic_bucket);
} overflow_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} deaths SEC(".maps");

/*
 * Every new owner stamp (a socket created, or taken over by another
 * process): userspace reads /proc/<pid> at once, while the process is
 * surely alive, so even a process that lives for a millisecond is named
 * and placed in its container. Losing one (ring full) only costs details.
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 << 10);
} owners SEC(".maps");

/*
 * Anchors: types that no map or function signature names do not reach BTF,
 * and bpf2go mirrors to Go only what BTF has.
 */
struct sock_record *unused_sock_record __attribute__((unused));
enum record_kind *unused_record_kind __attribute__((unused));
enum engine_stat *unused_engine_stat __attribute__((unused));
enum tcp_role *unused_tcp_role __attribute__((unused));
enum http_method *unused_http_method __attribute__((unused));

static __always_inline void bump(enum engine_stat s)
{
	__u32 key = s;
	__u64 *v = bpf_map_lookup_elem(&stats, &key);

	if (v)
		ATOMIC_ADD(v, 1);
}

static __always_inline void add_bucket(struct traffic_bucket *b, __u64 len)
{
	ATOMIC_ADD(&b->bytes, len);
	ATOMIC_ADD(&b->packets, 1);
}

static __always_inline void count_kernel(struct __sk_buff *skb, __u32 dir)
{
	struct bucket_key key = {.cgroup_id = bpf_skb_cgroup_id(skb), .dir = dir};
	struct traffic_bucket *b = bpf_map_lookup_elem(&kernel_counts, &key);

	if (!b) {
		struct traffic_bucket zero = {};

		bpf_map_update_elem(&kernel_counts, &key, &zero, BPF_NOEXIST);
		b = bpf_map_lookup_elem(&kernel_counts, &key);
	}
	if (!b) {
		bump(STAT_BUCKET_FULL);
		b = bpf_map_lookup_elem(&overflow_counts, &dir);
		if (!b)
			return;
	}
	add_bucket(b, skb->len);
}

static __always_inline void count_timewait(struct __sk_buff *skb, __u32 dir)
{
	struct tw_key key = {.cookie = bpf_get_socket_cookie(skb), .dir = dir};
	struct traffic_bucket *b = bpf_map_lookup_elem(&tw_counts, &key);

	if (!b) {
		struct traffic_bucket zero = {};

		bpf_map_update_elem(&tw_counts, &key, &zero, BPF_NOEXIST);
		b = bpf_map_lookup_elem(&tw_counts, &key);
	}
	if (!b) {
		bump(STAT_TW_FULL);
		count_kernel(skb, dir);
		return;
	}
	add_bucket(b, skb->len);
}

/* Which method an 8-byte payload prefix begins with, or -1. */
static __always_inline int http_method(const char *m)
{
	if (m[0] == 'G' && m[1] == 'E' && m[2] == 'T' && m[3] == ' ')
		return HTTP_GET;
	if (m[0] == 'P' && m[1] == 'U' && m[2] == 'T' && m[3] == ' ')
		return HTTP_PUT;
	if (m[0] == 'P' && m[1] == 'O' && m[2] == 'S' && m[3] == 'T' && m[4] == ' ')
		return HTTP_POST;
	if (m[0] == 'H' && m[1] == 'E' && m[2] == 'A' && m[3] == 'D' && m[4] == ' ')
		return HTTP_HEAD;
	if (m[0] == 'P' && m[1] == 'A' && m[2] == 'T' && m[3] == 'C' && m[4] == 'H' && m[5] == ' ')
		return HTTP_PATCH;
	if (m[0] == 'T' && m[1] == 'R' && m[2] == 'A' && m[3] == 'C' && m[4] == 'E' && m[5] == ' ')
		return HTTP_TRACE;
	if (m[0] == 'D' && m[1] == 'E' && m[2] == 'L' && m[3] == 'E' && m[4] == 'T' &&
	    m[5] == 'E' && m[6] == ' ')
		return HTTP_DELETE;
	if (m[0] == 'O' && m[1] == 'P' && m[2] == 'T' && m[3] == 'I' && m[4] == 'O' &&
	    m[5] == 'N' && m[6] == 'S' && m[7] == ' ')
		return HTTP_OPTIONS;
	if (m[0] == 'C' && m[1] == 'O' && m[2] == 'N' && m[3] == 'N' && m[4] == 'E' &&
	    m[5] == 'C' && m[6] == 'T' && m[7] == ' ')
		return HTTP_CONNECT;
	return -1;
}

/*
 * Counts an HTTP/1.x request when the first data segment after the server's
 * last response begins with a method. Reads at most 8 payload bytes at
 * offsets taken from the headers, bounds-checked by bpf_skb_load_bytes; TLS
 * and HTTP/2 never match and count as connections only.
 */
static __always_inline void http_request(struct __sk_buff *skb, struct counts *c)
{
	__u8 b, doff;
	__u32 off;
	char m[8];
	int meth;

	if (bpf_skb_load_bytes(skb, 0, &b, 1))
		return;
	if (b >> 4 == 4)
		off = (b & 0xf) * 4;
	else if (b >> 4 == 6)
		off = 40;
	else
		return;
	if (bpf_skb_load_bytes(skb, off + 12, &doff, 1))
		return;
	off += (doff >> 4) * 4;
	if (off >= skb->len)
		return; /* no payload: an ACK */
	c->http_ready = 0;
	if (bpf_skb_load_bytes(skb, off, m, sizeof(m)))
		return;
	meth = http_method(m);
	if (meth >= 0 && meth < HTTP_METHODS)
		ATOMIC_ADD(&c->http[meth], 1);
}

static __always_inline void count_skb(struct __sk_buff *skb, __u32 dir)
{
	struct bpf_sock *any = skb->sk;
	struct bpf_sock *sk;
	struct counts *c;

	if (!any) {
		count_kernel(skb, dir);
		return;
	}
	sk = bpf_sk_fullsock(any);
	if (!sk) {
		/* A request socket answers for its listener. */
		sk = bpf_get_listener_sock(any);
		if (!sk) {
			if (any->state == BPF_TCP_TIME_WAIT)
				count_timewait(skb, dir);
			else
				count_kernel(skb, dir);
			return;
		}
	}
	c = bpf_sk_storage_get(&count_store, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!c) {
		bump(STAT_COUNT_STORE_FAIL);
		count_kernel(skb, dir);
		return;
	}
	if (dir == DIR_EGRESS) {
		ATOMIC_ADD(&c->ip_tx, skb->len);
		ATOMIC_ADD(&c->pkt_tx, 1);
	} else {
		ATOMIC_ADD(&c->ip_rx, skb->len);
		ATOMIC_ADD(&c->pkt_rx, 1);
		if (c->http_ready)
			http_request(skb, c);
	}
}

SEC("cgroup_skb/egress")
int skb_egress(struct __sk_buff *skb)
{
	count_skb(skb, DIR_EGRESS);
	return CGROUP_SKB_ALLOW;
}

SEC("cgroup_skb/ingress")
int skb_ingress(struct __sk_buff *skb)
{
	count_skb(skb, DIR_INGRESS);
	return CGROUP_SKB_ALLOW;
}

/* Fills o from the current task (process context only). */
static __always_inline void stamp(struct owner *o, __u64 pid_tgid)
{
	struct task_struct *task = bpf_get_current_task_btf();

	o->tgid = pid_tgid >> 32;
	o->pid = (__u32)pid_tgid;
	o->uid = (__u32)bpf_get_current_uid_gid();
	o->cgroup_id = bpf_get_current_cgroup_id();
	o->start_boottime = task->group_leader->start_boottime;
	o->netns = task->nsproxy->net_ns->ns.inum;
	bpf_get_current_comm(o->comm, sizeof(o->comm));
	bpf_ringbuf_output(&owners, o, sizeof(*o), 0);
}

SEC("cgroup/sock_create")
int sock_create(struct bpf_sock *ctx)
{
	struct owner *o = bpf_sk_storage_get(&owner_store, ctx, 0, BPF_SK_STORAGE_GET_F_CREATE);

	if (o)
		stamp(o, bpf_get_current_pid_tgid());
	return 1;
}

/* Reads the addresses of a full socket. */
static __always_inline void read_tuple(struct tuple *t, struct sock *sk)
{
	t->family = sk->__sk_common.skc_family;
	t->sport = sk->__sk_common.skc_num;
	t->dport = bpf_ntohs(sk->__sk_common.skc_dport);
	if (t->family == AF_INET) {
		t->saddr[0] = sk->__sk_common.skc_rcv_saddr;
		t->daddr[0] = sk->__sk_common.skc_daddr;
	} else if (t->family == AF_INET6) {
		BPF_CORE_READ_INTO(&t->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32);
		BPF_CORE_READ_INTO(&t->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32);
	}
}

/* Called in process context on every send or receive. */
static __always_inline void on_payload(struct sock *sk, int ret, int tx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct owner *o;
	struct counts *c;
	__u16 family;

	if (!sk)
		return;
	/* Network traffic only: not unix, netlink or packet sockets. */
	family = sk->__sk_common.skc_family;
	if (family != AF_INET && family != AF_INET6)
		return;
	o = bpf_sk_storage_get(&owner_store, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (o && (o->tgid != pid_tgid >> 32 || o->start_boottime == 0))
		stamp(o, pid_tgid);
	/* TCP reads are counted by rcv_space (splice too): here only the owner. */
	if (ret <= 0 || (!tx && sk->sk_protocol == IPPROTO_TCP))
		return;
	c = bpf_sk_storage_get(&count_store, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!c) {
		bump(STAT_COUNT_STORE_FAIL);
		return;
	}
	if (tx) {
		ATOMIC_ADD(&c->payload_tx, ret);
		if (c->role == ROLE_SERVER)
			c->http_ready = 1; /* a response went out: a new request may follow */
	} else {
		ATOMIC_ADD(&c->payload_rx, ret);
	}
	/*
	 * Remember where a UDP socket talks to: it closes without a state
	 * change (TCP's addresses are kept by set_state, off this hot path).
	 */
	if (sk->sk_protocol != IPPROTO_TCP && sk->__sk_common.skc_num &&
	    (c->last.sport != sk->__sk_common.skc_num ||
	     c->last.dport != bpf_ntohs(sk->__sk_common.skc_dport)))
		read_tuple(&c->last, sk);
}

/* TCP: remember the addresses at every state change, the last while the port is still set. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(set_state, struct sock *sk, int oldstate, int newstate)
{
	__u64 flags = 0;
	struct counts *c;

	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	/*
	 * Handshakes create the storage, so every connection knows its role;
	 * so does listen(), so a listener is listed before its first SYN.
	 */
	if (newstate == BPF_TCP_SYN_RECV || newstate == BPF_TCP_LISTEN ||
	    (oldstate == BPF_TCP_SYN_SENT && newstate == BPF_TCP_ESTABLISHED))
		flags = BPF_SK_STORAGE_GET_F_CREATE;
	c = bpf_sk_storage_get(&count_store, (struct sock *)sk, 0, flags);
	if (!c)
		return 0;
	if (newstate == BPF_TCP_SYN_RECV) {
		c->role = ROLE_SERVER;
		c->http_ready = 1;
	} else if (oldstate == BPF_TCP_SYN_SENT)
		c->role = ROLE_CLIENT;
	if (newstate == BPF_TCP_ESTABLISHED && !c->seq_init) {
		struct tcp_sock *tp = bpf_skc_to_tcp_sock((struct sock *)sk);

		if (tp) {
			c->seq_mark = tp->copied_seq; /* nothing read yet */
			c->seq_init = 1;
		}
	}
	if (sk->__sk_common.skc_num)
		read_tuple(&c->last, (struct sock *)sk);
	return 0;
}

/*
 * TCP payload read by the application, by recvmsg or splice (which passes no
 * recv hook): the kernel calls this after advancing copied_seq. Reading the
 * peer's FIN advances copied_seq by one more: not payload.
 */
SEC("tp_btf/tcp_rcv_space_adjust")
int BPF_PROG(rcv_space, struct sock *sk)
{
	struct counts *c = bpf_sk_storage_get(&count_store, sk, 0, 0);
	struct tcp_sock *tp;
	__u32 copied, delta;

	if (!c)
		return 0;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return 0;
	copied = tp->copied_seq;
	if (!c->seq_init) {
		/* Never saw its start (another namespace, not adopted): from now on. */
		c->seq_mark = copied;
		c->seq_init = 1;
		return 0;
	}
	delta = copied - c->seq_mark;
	if (!delta)
		return 0;
	if (!c->fin_seen && (sk->sk_shutdown & 1) && copied == tp->rcv_nxt) {
		c->fin_seen = 1; /* RCV_SHUTDOWN and all read: the FIN was consumed */
		delta -= 1;
	}
	c->seq_mark = copied;
	ATOMIC_ADD(&c->payload_rx, delta);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(send_length, struct sock *sk, int ret, int flags)
{
	on_payload(sk, ret, 1);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(recv_length, struct sock *sk, int ret, int flags)
{
	/* MSG_PEEK reads nothing off the queue. */
	if (flags & 2)
		return 0;
	on_payload(sk, ret, 0);
	return 0;
}

/* Fills everything of r that a struct sock knows. */
static __always_inline void describe(struct sock_record *r, struct sock *sk, struct counts *c)
{
	struct owner *o = bpf_sk_storage_get(&owner_store, sk, 0, 0);
	struct tcp_sock *tp;
	struct socket *sock;

	r->cookie = bpf_get_socket_cookie(sk);
	r->protocol = sk->sk_protocol;
	r->state = sk->__sk_common.skc_state;
	r->netns = sk->__sk_common.skc_net.net->ns.inum;
	read_tuple(&r->tuple, sk);
	if (!r->tuple.sport && c && c->last.family)
		r->tuple = c->last; /* closed: the port is gone */
	sock = sk->sk_socket;
	if (sock && sock->file)
		r->ino = sock->file->f_inode->i_ino;
	tp = bpf_skc_to_tcp_sock(sk);
	if (tp) {
		r->bytes_acked = tp->bytes_acked;
		r->bytes_received = tp->bytes_received;
	}
	if (o) {
		r->owner = *o;
		r->has_owner = 1;
	}
	if (c)
		r->counts = *c;
}

static __always_inline void flush(struct sock *sk)
{
	struct counts *c = bpf_sk_storage_get(&count_store, sk, 0, 0);
	struct sock_record *r;

	if (!c)
		return; /* never carried a byte */
	r = bpf_ringbuf_reserve(&deaths, sizeof(*r), 0);
	if (!r) {
		bump(STAT_RING_FULL);
		return;
	}
	__builtin_memset(r, 0, sizeof(*r));
	describe(r, sk, c);
	r->kind = RECORD_DEAD;
	bpf_ringbuf_submit(r, 0);
}

/*
 * TCP sockets are flushed when destroyed, not at close(): an orphaned socket
 * goes on sending (and retransmitting) after its process closed it.
 */
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(tcp_destroy, struct sock *sk)
{
	flush(sk);
	return 0;
}

/*
 * Other protocols are flushed at release. Its context (struct bpf_sock)
 * exposes no addresses to this attach type, so the record carries cookie,
 * owner and counters only; userspace keeps the addresses from the last dump.
 */
SEC("cgroup/sock_release")
int sock_release(struct bpf_sock *ctx)
{
	struct task_struct *task;
	struct sock_record *r;
	struct counts *c;
	struct owner *o;

	if (ctx->protocol == IPPROTO_TCP)
		return 1;
	c = bpf_sk_storage_get(&count_store, ctx, 0, 0);
	if (!c)
		return 1;
	r = bpf_ringbuf_reserve(&deaths, sizeof(*r), 0);
	if (!r) {
		bump(STAT_RING_FULL);
		return 1;
	}
	__builtin_memset(r, 0, sizeof(*r));
	r->cookie = bpf_get_socket_cookie(ctx);
	r->protocol = ctx->protocol;
	r->tuple = c->last;
	r->tuple.family = ctx->family;
	/* Release runs in the closing task's context: its namespace. */
	task = bpf_get_current_task_btf();
	r->netns = task->nsproxy->net_ns->ns.inum;
	o = bpf_sk_storage_get(&owner_store, ctx, 0, 0);
	if (o) {
		r->owner = *o;
		r->has_owner = 1;
	}
	r->counts = *c;
	r->kind = RECORD_DEAD;
	bpf_ringbuf_submit(r, 0);
	return 1;
}

SEC("iter/bpf_sk_storage_map")
int dump_sockets(struct bpf_iter__bpf_sk_storage_map *ctx)
{
	struct sock *sk = ctx->sk;
	struct counts *c = ctx->value;
	struct sock_record r = {};

	if (!sk || !c)
		return 0;
	describe(&r, sk, c);
	r.kind = RECORD_LIVE;
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}

/*
 * Adoption of sockets older than the engine: give every existing TCP and
 * UDP socket of the iterating task's namespace its counter storage, so the
 * next dump lists it (with its inode, for the /proc fd scan, and TCP's
 * lifetime counters) even if it stays silent.
 */
static __always_inline void adopt(struct sock *sk)
{
	struct counts *c = bpf_sk_storage_get(&count_store, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);

	if (c && !c->last.family)
		read_tuple(&c->last, sk);
	if (c && !c->seq_init && sk->sk_protocol == IPPROTO_TCP) {
		struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);

		if (tp) {
			c->seq_mark = tp->copied_seq; /* count what it reads from now on */
			c->seq_init = 1;
		}
	}
}

SEC("iter/tcp")
int adopt_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct tcp_sock *tp;

	if (!skc)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (tp)
		adopt((struct sock *)tp);
	return 0;
}

SEC("iter/udp")
int adopt_udp(struct bpf_iter__udp *ctx)
{
	struct udp_sock *udp = ctx->udp_sk;

	if (udp)
		adopt((struct sock *)udp);
	return 0;
}
