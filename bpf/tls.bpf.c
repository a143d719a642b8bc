// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * OpenSSL plaintext capture.
 *
 * Entry uprobes on SSL_{read,write}[_ex] remember the call per thread; the
 * return uprobes copy exactly the bytes transferred into perf records, split
 * into CHUNK_DATA_SIZE pieces. The socket fd comes, in order of trust, from a
 * socket syscall the thread makes during the call (works with any BIO), from
 * what an earlier call or SSL_set_fd taught us about this SSL*, or from the
 * SSL's BIO via per-version offsets. The connection 4-tuple is read from the
 * fd by walking task -> files -> fdtable -> file -> socket -> sock: this
 * needs neither kprobes nor fentry, and works for connections that predate
 * the tool.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFSOCK 0140000
/* OpenSSL BIO_TYPE_SOCKET and BIO_TYPE_FD (type numbers | descriptor flags). */
#define BIO_TYPE_SOCKET (5 | 0x0400 | 0x0100)
#define BIO_TYPE_FD (4 | 0x0400 | 0x0100)

const volatile struct bpf_config cfg = {};

/* A call in progress on one thread. */
struct call_ctx {
	__u64 ssl;
	__u64 buf;
	__u64 len_ptr; /* size_t *written / *readbytes for the _ex variants */
	__s32 fd;      /* from a socket syscall during the call, or -1 */
	__u32 lib_idx;
	__u8 dir;
	__u8 is_ex;
	__u8 _pad[6];
};

struct ssl_key {
	__u32 tgid;
	__u32 _pad;
	__u64 ssl;
};

struct scratch {
	__u32 busy;
	__u32 _pad;
	struct tls_chunk_hdr hdr;
	__u8 data[CHUNK_DATA_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct call_ctx);
} active SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ssl_key);
	__type(value, __s32);
} ssl_fds SEC(".maps");

/* max_entries is set by userspace to possible CPUs * SCRATCH_SLOTS. A plain
 * array because per-CPU map values are limited to 32 KiB. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} call_seq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

static __always_inline void count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &stat);
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline int filtered_out(__u64 pid_tgid)
{
	if (cfg.target_pid && (__u32)(pid_tgid >> 32) != cfg.target_pid)
		return 1;
	if (cfg.target_uid && (__u32)bpf_get_current_uid_gid() != cfg.target_uid)
		return 1;
	return 0;
}

/* ---- entry --------------------------------------------------------------- */

static __always_inline int on_entry(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u8 is_ex = (cookie & COOKIE_EX) != 0;

	__u64 id = bpf_get_current_pid_tgid();
	if (filtered_out(id))
		return 0;

	struct call_ctx c = {};
	c.ssl = PT_REGS_PARM1(ctx);
	c.buf = PT_REGS_PARM2(ctx);
	c.len_ptr = is_ex ? PT_REGS_PARM4(ctx) : 0;
	c.fd = -1;
	c.lib_idx = cookie & COOKIE_LIB_MASK;
	c.dir = (cookie & COOKIE_WRITE) ? DIR_WRITE : DIR_READ;
	c.is_ex = is_ex;
	if (bpf_map_update_elem(&active, &id, &c, BPF_ANY))
		count(STAT_ACTIVE_FULL);
	return 0;
}

/* One program for the four functions; the attach cookie says which. */
SEC("uprobe")
int BPF_KPROBE(ssl_rw_entry)
{
	return on_entry(ctx);
}

/* SSL_set_fd / SSL_set_rfd / SSL_set_wfd (SSL *s, int fd): the fd at once. */
SEC("uprobe")
int BPF_KPROBE(ssl_set_fd_entry, void *ssl, int fd)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (filtered_out(id) || fd < 0)
		return 0;
	struct ssl_key k = {.tgid = id >> 32, .ssl = (__u64)ssl};
	bpf_map_update_elem(&ssl_fds, &k, &fd, BPF_ANY);
	return 0;
}

/* The struct sock behind fd of the current task, or NULL when fd is not a
 * socket. */
static __always_inline struct sock *sock_of_fd(__s32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *f = 0;

	if (!fdt || fd < 0 || (__u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return 0;
	if ((BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return 0;
	struct socket *sock = (struct socket *)BPF_CORE_READ(f, private_data);
	return BPF_CORE_READ(sock, sk);
}

/* Local and remote address of socket fd of the current task. */
static __always_inline void fill_tuple(struct tls_chunk_hdr *h, __s32 fd)
{
	struct sock *sk = sock_of_fd(fd);
	if (!sk)
		return;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == AF_INET) {
		__u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(h->laddr, &l, sizeof(l));
		__builtin_memcpy(h->raddr, &r, sizeof(r));
	} else if (family == AF_INET6) {
		struct in6_addr l = BPF_CORE_READ(sk, __sk_common.skc_v6_rcv_saddr);
		struct in6_addr r = BPF_CORE_READ(sk, __sk_common.skc_v6_daddr);
		__builtin_memcpy(h->laddr, &l, sizeof(l));
		__builtin_memcpy(h->raddr, &r, sizeof(r));
	} else {
		return;
	}
	h->family = family;
	h->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	h->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
}


/* SSL_free(SSL *s): the connection is over. A header-only record tells
 * userspace to finish what it holds for it; the fd it learnt is forgotten. */
SEC("uprobe")
int BPF_KPROBE(ssl_free_entry, void *ssl)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (filtered_out(id) || !ssl)
		return 0;
	struct ssl_key k = {.tgid = id >> 32, .ssl = (__u64)ssl};
	__s32 *fd = bpf_map_lookup_elem(&ssl_fds, &k);
	struct tls_chunk_hdr h = {};
	h.ts_ns = bpf_ktime_get_ns();
	h.ssl = (__u64)ssl;
	h.pid = id >> 32;
	h.tid = (__u32)id;
	h.uid = (__u32)bpf_get_current_uid_gid();
	h.fd = fd ? *fd : -1;
	h.lib_idx = (__u32)bpf_get_attach_cookie(ctx);
	h.flags = CHUNK_F_CLOSE;
	bpf_get_current_comm(h.comm, sizeof(h.comm));
	if (fd)
		bpf_map_delete_elem(&ssl_fds, &k);
	if (bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &h, sizeof(h)))
		count(STAT_PERF_OUTPUT_FAIL);
	return 0;
}

/* ---- fd from socket syscalls made inside an SSL call -------------------- */

/* The first socket this thread reads or writes during an SSL call is the
 * SSL's. Other fds (a keylog file written from a callback, a pipe) are
 * skipped. */
static __always_inline int note_fd(unsigned long fd)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call_ctx *c = bpf_map_lookup_elem(&active, &id);
	if (c && c->fd < 0 && fd < 0x7fffffff && sock_of_fd((__s32)fd))
		c->fd = (__s32)fd;
	return 0;
}

/* One raw tracepoint on sys_enter rather than eight syscall tracepoints:
 * raw tracepoints are attached by name and need no tracefs mount, which many
 * hosts (and containers) do not have. Syscall numbers are x86_64's. */
SEC("raw_tracepoint/sys_enter")
int sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	switch (ctx->args[1]) {
	case 0:  /* read */
	case 1:  /* write */
	case 19: /* readv */
	case 20: /* writev */
	case 44: /* sendto */
	case 45: /* recvfrom */
	case 46: /* sendmsg */
	case 47: /* recvmsg */
		break;
	default:
		return 0;
	}
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	return note_fd(PT_REGS_PARM1_CORE_SYSCALL(regs));
}

/* ---- return ---------------------------------------------------------------- */

/* A copy of the offsets of library idx; valid == 0 when there are none. */
static __always_inline struct lib_offsets lib_off(__u32 idx)
{
	struct lib_offsets o = {};
	if (idx < MAX_LIBS) {
		o.ssl_version = cfg.libs[idx].ssl_version;
		o.ssl_rbio = cfg.libs[idx].ssl_rbio;
		o.ssl_wbio = cfg.libs[idx].ssl_wbio;
		o.bio_num = cfg.libs[idx].bio_num;
		o.bio_method = cfg.libs[idx].bio_method;
		o.ssl_server = cfg.libs[idx].ssl_server;
		o.valid = cfg.libs[idx].valid;
	}
	return o;
}

/* The fd of the SSL's BIO when it is a socket or fd BIO, else -1. */
static __always_inline __s32 fd_from_bio(__u64 ssl, const struct lib_offsets *o, __u8 dir)
{
	__u64 bio = 0, method = 0;
	__s32 type = 0, fd = -1;

	if (!o->valid)
		return -1;
	if (bpf_probe_read_user(&bio, sizeof(bio),
				(void *)(ssl + (dir == DIR_WRITE ? o->ssl_wbio : o->ssl_rbio))) || !bio)
		return -1;
	if (bpf_probe_read_user(&method, sizeof(method), (void *)(bio + o->bio_method)) || !method)
		return -1;
	if (bpf_probe_read_user(&type, sizeof(type), (void *)method))
		return -1;
	if (type != BIO_TYPE_SOCKET && type != BIO_TYPE_FD)
		return -1;
	if (bpf_probe_read_user(&fd, sizeof(fd), (void *)(bio + o->bio_num)))
		return -1;
	return fd;
}

struct emit_ctx {
	void *regs;
	__u64 src;
	__u32 slot;
	__u32 captured;
};

static long emit_chunk(__u32 i, void *arg)
{
	struct emit_ctx *ec = arg;
	__u32 slot = ec->slot;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &slot);
	__u32 off = i * CHUNK_DATA_SIZE;
	__u32 len;

	if (!s || off >= ec->captured)
		return 1;
	len = ec->captured - off;
	if (len > CHUNK_DATA_SIZE)
		len = CHUNK_DATA_SIZE;
	s->hdr.chunk_off = off;
	s->hdr.chunk_len = len;
	if (bpf_probe_read_user(s->data, len, (void *)(ec->src + off))) {
		count(STAT_READ_USER_FAIL);
		return 0;
	}
	if (bpf_perf_event_output(ec->regs, &events, BPF_F_CURRENT_CPU, &s->hdr,
				  sizeof(s->hdr) + len))
		count(STAT_PERF_OUTPUT_FAIL);
	return 0;
}

static __always_inline int claim_slot(__u32 *slot_out)
{
	__u32 base = bpf_get_smp_processor_id() * SCRATCH_SLOTS;
	for (__u32 i = 0; i < SCRATCH_SLOTS; i++) {
		__u32 slot = base + i;
		struct scratch *s = bpf_map_lookup_elem(&scratch, &slot);
		if (s && __sync_val_compare_and_swap(&s->busy, 0, 1) == 0) {
			*slot_out = slot;
			return 0;
		}
	}
	return -1;
}

static __always_inline int on_return(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call_ctx *cp = bpf_map_lookup_elem(&active, &id);
	if (!cp)
		return 0;
	struct call_ctx c = *cp;
	bpf_map_delete_elem(&active, &id);

	__u64 n;
	long ret = PT_REGS_RC(ctx);
	if (c.is_ex) {
		__u64 moved = 0;
		if ((int)ret != 1)
			return 0;
		if (bpf_probe_read_user(&moved, sizeof(moved), (void *)c.len_ptr)) {
			count(STAT_READ_LEN_FAIL);
			return 0;
		}
		n = moved;
	} else {
		if ((int)ret <= 0)
			return 0;
		n = (__u32)(int)ret;
	}
	if (n == 0)
		return 0;

	struct lib_offsets o = lib_off(c.lib_idx);
	struct ssl_key key = {.tgid = id >> 32, .ssl = c.ssl};
	__u8 flags = 0;
	__s32 fd = c.fd;
	if (fd >= 0) {
		flags |= CHUNK_F_FD_SYSCALL;
		bpf_map_update_elem(&ssl_fds, &key, &fd, BPF_ANY);
	} else {
		__s32 *known = bpf_map_lookup_elem(&ssl_fds, &key);
		if (known) {
			fd = *known;
			flags |= CHUNK_F_FD_CACHED;
		} else {
			fd = fd_from_bio(c.ssl, &o, c.dir);
			if (fd >= 0) {
				flags |= CHUNK_F_FD_BIO;
				bpf_map_update_elem(&ssl_fds, &key, &fd, BPF_ANY);
			}
		}
	}

	__u32 slot;
	if (claim_slot(&slot)) {
		count(STAT_SLOT_BUSY);
		return 0;
	}
	struct scratch *s = bpf_map_lookup_elem(&scratch, &slot);
	if (!s)
		return 0;

	struct tls_chunk_hdr *h = &s->hdr;
	__builtin_memset(h, 0, sizeof(*h));
	h->ts_ns = bpf_ktime_get_ns();
	__u32 zero = 0;
	__u64 *seq = bpf_map_lookup_elem(&call_seq, &zero);
	__u64 seqv = seq ? __sync_fetch_and_add(seq, 1) : 0;
	h->call_id = ((__u64)bpf_get_smp_processor_id() << 48) | (seqv & 0xffffffffffffULL);
	h->ssl = c.ssl;
	h->pid = id >> 32;
	h->tid = (__u32)id;
	h->uid = (__u32)bpf_get_current_uid_gid();
	h->fd = fd;
	h->total_len = n > 0xffffffffULL ? 0xffffffff : (__u32)n;
	__u32 cap = cfg.capture_cap;
	if (cap > MAX_CAPTURE_CAP)
		cap = MAX_CAPTURE_CAP;
	h->captured_len = n > cap ? cap : (__u32)n;
	if (n > cap)
		flags |= CHUNK_F_TRUNCATED;
	if (o.valid) {
		__s32 v = 0;
		bpf_probe_read_user(&v, sizeof(v), (void *)(c.ssl + o.ssl_version));
		h->tls_version = (__u32)v;
		if (o.ssl_server) {
			__s32 server = 0;
			if (!bpf_probe_read_user(&server, sizeof(server), (void *)(c.ssl + o.ssl_server)))
				flags |= CHUNK_F_ROLE_KNOWN | (server ? CHUNK_F_SERVER : 0);
		}
	}
	h->lib_idx = c.lib_idx;
	h->dir = c.dir;
	h->flags = flags;
	bpf_get_current_comm(h->comm, sizeof(h->comm));
	fill_tuple(h, fd);

	struct emit_ctx ec = {
		.regs = ctx,
		.src = c.buf,
		.slot = slot,
		.captured = h->captured_len,
	};
	__u32 nchunks = (ec.captured + CHUNK_DATA_SIZE - 1) / CHUNK_DATA_SIZE;
	bpf_loop(nchunks, emit_chunk, &ec, 0);

	s = bpf_map_lookup_elem(&scratch, &slot);
	if (s)
		__sync_lock_test_and_set(&s->busy, 0);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_rw_return)
{
	return on_return(ctx);
}
