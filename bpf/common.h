/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What every capture module's BPF object shares: the configuration and
 * filters, failure counters, the ring buffer records go to, per-thread
 * tracking of a read/write call in progress, the fd a call uses (from a
 * socket syscall made during it, or remembered per connection), the
 * connection 4-tuple from the fd, and the copying of a call's payload into
 * chunk records.
 *
 * A module's .bpf.c includes this and adds its own probes: entry probes
 * call `call_begin`, return probes `call_take` then `call_emit`. The socket
 * syscall program below is part of every object: userspace attaches it.
 *
 * Every object is built twice (Makefile): as it is, for kernels with
 * bpf_loop, attach cookies and BPF atomics (5.17+), and with ECAP_COMPAT for
 * older kernels (5.10 on), where none of the three exists. There, chunks are
 * sent in a bounded loop, modules attach one program per function instead of
 * reading a cookie, and a CPU's scratch buffer is taken without a lock: on
 * those kernels a uprobe's BPF program runs with preemption disabled and
 * refuses to nest (trace_call_bpf's bpf_prog_active), so one program at a
 * time uses a CPU's buffer.
 *
 * The tuple: task -> files -> fdtable -> file -> socket -> sock, with CO-RE
 * reads. This needs neither kprobes nor fentry, and works for connections
 * that predate the tool.
 */
#ifndef ECAPTURE_COMMON_H
#define ECAPTURE_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "abi.h"
#include "arch.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFSOCK 0140000

const volatile struct common_cfg common_cfg = {};

/* Every record struct, named in the object's BTF so that userspace can
 * check its layouts against them (src/capture/abi.rs). A section libbpf
 * does not load: it costs nothing at run time. */
struct abi_types {
	struct rec_hdr rec_hdr;
	struct chunk_rec chunk_rec;
	struct close_rec close_rec;
	struct secret_rec secret_rec;
};
struct abi_types abi_types SEC(".abi") __attribute__((used));

/* A socket's addresses, as chunk_rec carries them (family 0: unknown). */
struct sock_tuple {
	__u16 family;
	__u16 lport; /* host byte order */
	__u16 rport;
	__u16 _pad;
	__u8 laddr[16];
	__u8 raddr[16];
};


/* fds remembered per call (a power of two). */
#define CALL_FDS 4

/* A call in progress on one thread. */
struct call_ctx {
	__u64 conn;
	__u64 buf;
	__u64 len_ptr; /* where the library writes the length moved, if it does */
	/* The first distinct fds the thread read or wrote during the call, in
	 * order, not yet checked: the return probe takes the first that is a
	 * socket (the walk it needs for the tuple anyway). */
	__s32 fds[CALL_FDS];
	__u32 lib_idx;
	__u32 uid;      /* the thread's, at the call's start */
	__u8 nfds;
	__u8 dir;
	__u8 len_out;   /* the length moved is written to *len_ptr */
	__u8 live;      /* a call is in progress (the entry outlives it) */
	__u8 want_fds;  /* its connection's fd is not known: note the fds (counted in fds_wanted) */
	__u8 _pad[3];
};

struct conn_key {
	__u32 tgid;
	__u32 _pad;
	__u64 conn;
};

/* What is remembered of a connection (conn_fds): its fd, and its socket's
 * tuple with the open file it was read from, so that a call on the same
 * socket checks the file and its inode number (two reads) instead of
 * walking to the socket and reading the addresses again (five). The file
 * alone would not do: a closed file's memory is soon another socket's. */
struct conn_state {
	__u64 file; /* the struct file of fd the tuple was read from; 0: none */
	__u64 ino;  /* its inode's number */
	__s32 fd;
	__u32 tls_version; /* a module's cache: 0 until known */
	__u8 role;         /* a module's cache: CHUNK_F_ROLE_KNOWN | CHUNK_F_SERVER */
	__u8 _pad[7];
	struct sock_tuple tuple;
};

static const struct conn_state zero_state;

/* What a module knows about a finished call beyond the common part. */
struct call_info {
	struct sock_tuple tuple; /* the call's socket's (family 0: not read) */
	__s32 fd;
	__u32 tls_version;
	__u8 flags; /* CHUNK_F_* */
};

struct scratch {
	__u32 busy;
	__u32 _pad;
	struct chunk_rec hdr;
	__u8 data[CHUNK_DATA_SIZE];
};

/* Every object's records go to one ring, created by userspace and shared
 * (max_entries is set there too). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

/* 1 while the ring reader sleeps until a record wakes it (set by the
 * reader, cleared by the probe that wakes it). Created by userspace with
 * the ring and shared by every object. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} reader_asleep SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct call_ctx);
} active SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, struct conn_state);
} conn_fds SEC(".maps");

/* A count in a one-entry array, changed with atomic adds (any CPU). */
#define COUNT_MAP(name)                           \
	struct {                                  \
		__uint(type, BPF_MAP_TYPE_ARRAY); \
		__uint(max_entries, 1);           \
		__type(key, __u32);               \
		__type(value, __u64);             \
	} name SEC(".maps")

static __always_inline void count_add(void *map, __s64 d)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(map, &zero);
	if (n)
		__sync_fetch_and_add(n, d);
}

/* Whether the count is not 0 (or cannot be read). */
static __always_inline int count_nonzero(void *map)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(map, &zero);
	return !n || *(volatile __u64 *)n;
}

/* How many calls in progress want the fds their thread reads and writes
 * noted: those whose connection's fd is not known yet (its first calls, a
 * memory BIO's until matched). Mostly 0, and then sys_enter, which every
 * read and write on the host passes through, returns without looking up
 * the thread's call. Shared by every object. A call that never returns
 * (its thread killed inside the library) leaves it above 0: sys_enter then
 * looks again, as it always did. */
COUNT_MAP(fds_wanted);

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
	__uint(max_entries, STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &stat);
	if (v)
		__sync_fetch_and_add(v, 1);
}

/* Whether a thread of pid_tgid running as uid is not traced. */
static __always_inline int filtered_out_as(__u64 pid_tgid, __u32 uid)
{
	/* ecapture itself (its sinks' TLS, whatever library it links) */
	if ((__u32)(pid_tgid >> 32) == common_cfg.self_pid)
		return 1;
	if (common_cfg.target_pid && (__u32)(pid_tgid >> 32) != common_cfg.target_pid)
		return 1;
	if (common_cfg.target_uid && uid != common_cfg.target_uid)
		return 1;
	return 0;
}

static __always_inline int filtered_out(__u64 pid_tgid)
{
	return filtered_out_as(pid_tgid, common_cfg.target_uid ? (__u32)bpf_get_current_uid_gid() : 0);
}

/* Wakes the ring reader if it sleeps. Called after a record was committed
 * without a wake-up: the commit is a full barrier (the kernel's xchg of the
 * record's length), so either this load sees the 1 the reader stored before
 * its last look at the ring, or that look saw this record. Two probes may
 * both wake it: harmless. The wake-up is an empty record discarded with
 * BPF_RB_FORCE_WAKEUP (the reader never sees it). */
static __always_inline void wake_sleeping_reader(void)
{
	__u32 zero = 0;
	__u32 *asleep = bpf_map_lookup_elem(&reader_asleep, &zero);
	if (!asleep || !*(volatile __u32 *)asleep)
		return;
	*(volatile __u32 *)asleep = 0;
	void *r = bpf_ringbuf_reserve(&events, 8, 0);
	if (r)
		bpf_ringbuf_discard(r, BPF_RB_FORCE_WAKEUP);
}

/* Sends a record. While records come, the reader looks at the ring every
 * few milliseconds and is woken early only once a quarter of the ring is
 * waiting (a wake-up costs the traced thread several microseconds); once it
 * found the ring empty for a while it sleeps until the next record wakes
 * it. A full ring is counted. */
static __always_inline void output(void *data, __u64 len)
{
	__u64 waiting = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 flags = waiting + len >= common_cfg.wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_output(&events, data, len, flags)) {
		count(STAT_OUTPUT_FAIL);
		return;
	}
	if (flags == BPF_RB_NO_WAKEUP)
		wake_sleeping_reader();
}

/* ---- calls ------------------------------------------------------------------ */

/* Remembers a call this thread is starting. A thread's entry is kept
 * between its calls and rewritten in place: an LRU hash update or delete
 * takes the map's locks and recycles a node, a lookup only marks it used.
 * Threads that are gone age out of the LRU. */
static __always_inline void call_begin(__u64 conn, __u64 buf, __u64 len_ptr, __u8 len_out, __u8 dir,
				       __u32 lib_idx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 uid = (__u32)bpf_get_current_uid_gid(); /* the filter's and the record's: read once */
	if (filtered_out_as(id, uid))
		return;
	struct conn_key k = {.tgid = id >> 32, .conn = conn};
	struct conn_state *st = bpf_map_lookup_elem(&conn_fds, &k);
	__u8 want = !st || st->fd < 0;
	struct call_ctx *cp = bpf_map_lookup_elem(&active, &id);
	if (cp) {
		if (cp->live && cp->want_fds) /* a call that never returned */
			count_add(&fds_wanted, -1);
		cp->conn = conn;
		cp->buf = buf;
		cp->len_ptr = len_ptr;
		cp->len_out = len_out;
		cp->nfds = 0;
		cp->lib_idx = lib_idx;
		cp->uid = uid;
		cp->dir = dir;
		cp->want_fds = want;
		if (want)
			count_add(&fds_wanted, 1);
		cp->live = 1;
		return;
	}
	struct call_ctx c = {};
	c.conn = conn;
	c.buf = buf;
	c.len_ptr = len_ptr;
	c.len_out = len_out;
	c.lib_idx = lib_idx;
	c.uid = uid;
	c.dir = dir;
	c.want_fds = want;
	c.live = 1;
	if (bpf_map_update_elem(&active, &id, &c, BPF_ANY))
		count(STAT_ACTIVE_FULL);
	else if (want)
		count_add(&fds_wanted, 1);
}

/* The call this thread is finishing, now over; -1 when there is none. */
static __always_inline int call_take(struct call_ctx *c)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call_ctx *cp = bpf_map_lookup_elem(&active, &id);
	if (!cp || !cp->live)
		return -1;
	*c = *cp;
	cp->live = 0;
	if (c->want_fds)
		count_add(&fds_wanted, -1);
	return 0;
}

/* ---- the fd and the tuple ------------------------------------------------- */

/* The open file behind fd of the current task, or NULL. */
static __always_inline struct file *file_of_fd(__s32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *f = 0;

	if (!fdt || fd < 0 || (__u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]))
		return 0;
	return f;
}

/* The struct sock of open file f, or NULL when f is not a socket. */
static __always_inline struct sock *sock_of_file(struct file *f)
{
	if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return 0;
	struct socket *sock = (struct socket *)BPF_CORE_READ(f, private_data);
	return BPF_CORE_READ(sock, sk);
}

/* The struct sock behind fd of the current task, or NULL when fd is not a
 * socket. */
static __always_inline struct sock *sock_of_fd(__s32 fd)
{
	return sock_of_file(file_of_fd(fd));
}

/* Local and remote address of socket sk. Each kernel read costs tens of
 * nanoseconds, so the pairs are read whole: skc_addrpair is (daddr,
 * rcv_saddr) and skc_portpair (dport, num), low half first. */
static __always_inline void read_tuple(struct sock_tuple *t, struct sock *sk)
{
	if (!sk)
		return;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == AF_INET) {
		__u64 pair = BPF_CORE_READ(sk, __sk_common.skc_addrpair);
		__u32 r = (__u32)pair, l = (__u32)(pair >> 32);
		__builtin_memcpy(t->laddr, &l, sizeof(l));
		__builtin_memcpy(t->raddr, &r, sizeof(r));
	} else if (family == AF_INET6) {
		struct in6_addr l = BPF_CORE_READ(sk, __sk_common.skc_v6_rcv_saddr);
		struct in6_addr r = BPF_CORE_READ(sk, __sk_common.skc_v6_daddr);
		__builtin_memcpy(t->laddr, &l, sizeof(l));
		__builtin_memcpy(t->raddr, &r, sizeof(r));
	} else {
		return;
	}
	t->family = family;
	__u32 ports = BPF_CORE_READ(sk, __sk_common.skc_portpair);
	t->lport = ports >> 16;
	t->rport = bpf_ntohs((__u16)ports);
}

/* Remembers that conn (in this process) uses fd. */
static __always_inline void conn_fd_set(__u64 conn, __s32 fd)
{
	struct conn_key k = {.tgid = bpf_get_current_pid_tgid() >> 32, .conn = conn};
	struct conn_state *known = bpf_map_lookup_elem(&conn_fds, &k);
	if (known && known->fd == fd)
		return; /* the usual case: no LRU update (locks, a recycled node) per call */
	struct conn_state st = {.fd = fd};
	bpf_map_update_elem(&conn_fds, &k, &st, BPF_ANY);
}

/* The tuple of f (the open file of st's fd) into *out: st's when st read
 * it from this very file (same address, same inode), else the socket's,
 * then remembered in st. -1 when f is not a socket. */
static __always_inline int known_tuple(struct file *f, struct conn_state *st, struct sock_tuple *out)
{
	__u64 ino = BPF_CORE_READ(f, f_inode, i_ino);
	if (st->file == (__u64)f && st->ino == ino) {
		*out = st->tuple;
		return 0;
	}
	struct sock *sk = sock_of_file(f);
	if (!sk)
		return -1;
	read_tuple(out, sk);
	st->file = (__u64)f;
	st->ino = ino;
	st->tuple = *out;
	return 0;
}

/* The fd of the call and its socket's tuple: the first fd the thread read
 * or wrote during the call that is a socket (remembered for conn), else
 * the fd remembered for conn while it is a socket; -1 when neither. The
 * fds are noted only while conn's is not known (call_begin): a known one
 * is checked (same open file, same inode) instead. Returns conn's state
 * (for a module's own cache), or NULL. A function of its own: its stack is not
 * the probe's. */
static __noinline struct conn_state *call_fd(const struct call_ctx *c, struct call_info *info)
{
	struct conn_key k = {.tgid = bpf_get_current_pid_tgid() >> 32, .conn = c->conn};
	struct conn_state *st = bpf_map_lookup_elem(&conn_fds, &k);
	for (int i = 0; i < CALL_FDS; i++) {
		if (i >= c->nfds)
			break;
		__s32 fd = c->fds[i];
		struct file *f = file_of_fd(fd);
		if (!f)
			continue;
		if (st && st->fd == fd) {
			if (known_tuple(f, st, &info->tuple))
				continue;
		} else {
			/* A socket new to conn: remembered with its tuple. */
			struct sock *sk = sock_of_file(f);
			if (!sk)
				continue;
			/* (Filled in place: a conn_state on this stack would not fit
			 * beside the largest probe's.) */
			bpf_map_update_elem(&conn_fds, &k, (void *)&zero_state, BPF_ANY);
			st = bpf_map_lookup_elem(&conn_fds, &k);
			read_tuple(&info->tuple, sk);
			if (st) {
				st->fd = fd;
				st->file = (__u64)f;
				st->ino = BPF_CORE_READ(f, f_inode, i_ino);
				st->tuple = info->tuple;
			}
		}
		info->fd = fd;
		info->flags |= CHUNK_F_FD_SYSCALL;
		return st;
	}
	if (st && st->fd >= 0) {
		struct file *f = file_of_fd(st->fd);
		if (f && !known_tuple(f, st, &info->tuple)) {
			info->fd = st->fd;
			info->flags |= CHUNK_F_FD_CACHED;
			return st;
		}
		/* Not a socket any more: the next calls note their fds again. */
		st->fd = -1;
		st->file = 0;
	}
	info->fd = -1;
	return st;
}

/* The TLS version and role a module read for the connection before (st's
 * cache, filled by meta_remember): both are settled once data moves. 1
 * when they were there. */
static __always_inline int meta_known(const struct conn_state *st, struct call_info *info)
{
	if (!st || !st->tls_version)
		return 0;
	info->tls_version = st->tls_version;
	info->flags |= st->role;
	return 1;
}

static __always_inline void meta_remember(struct conn_state *st, const struct call_info *info)
{
	if (!st || !info->tls_version)
		return;
	st->tls_version = info->tls_version;
	st->role = info->flags & (CHUNK_F_ROLE_KNOWN | CHUNK_F_SERVER);
}

/* A read or write of fd by this thread: noted if a call is in progress.
 * Whether fd is a socket is left to the return probe (other fds, such as a
 * keylog file written from a callback or a pipe, are skipped there): this
 * runs for every read and write on the host. */
static __always_inline int note_fd(struct pt_regs *regs)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call_ctx *c = bpf_map_lookup_elem(&active, &id);
	if (!c || !c->live || !c->want_fds)
		return 0;
	/* Read only now: a kernel read costs more than the lookup. */
	unsigned long fd = PT_REGS_PARM1_CORE_SYSCALL(regs);
	if (fd > 0x7fffffff)
		return 0;
	__u32 n = c->nfds;
	if (n >= CALL_FDS || (n > 0 && c->fds[(n - 1) & (CALL_FDS - 1)] == (__s32)fd))
		return 0;
	c->fds[n & (CALL_FDS - 1)] = (__s32)fd;
	c->nfds = n + 1;
	return 0;
}

/* ---- memory BIOs ------------------------------------------------------------ */

/* A program whose own event loop moves the ciphertext (a memory BIO, not a
 * socket BIO) makes no socket syscall inside the library's calls. Its
 * connection's socket is learnt from the ciphertext itself, on the thread
 * that runs the loop: the first bytes of what the library is about to
 * decrypt were, moments before, the first bytes of one of the thread's
 * last reads from a socket; the first bytes of what the library just
 * encrypted are the first bytes the thread next writes to a socket. Only
 * threads that have used a memory BIO are watched (mem_threads), and a
 * match needs MEM_MATCH_MIN equal bytes of ciphertext (a TLS record header
 * and the start of its random-looking body): a wrong fd is never guessed. */
#define MEM_HEAD 16
#define MEM_READS 4
#define MEM_MATCH_MIN 12

struct mem_read {
	__s32 fd;
	__u32 len;
	__u8 head[MEM_HEAD];
};

struct mem_thread {
	__u64 read_buf; /* a read/recvfrom in progress: its buffer (0: none) */
	__s32 read_fd;
	__u32 next; /* reads[next % MEM_READS] is the next to replace */
	struct mem_read reads[MEM_READS];
	__u64 send_conn; /* this connection's ciphertext starts with send_head */
	__u32 send_len;
	__u32 _pad;
	__u8 send_head[MEM_HEAD];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct mem_thread);
} mem_threads SEC(".maps");

/* 1 once any thread has used a memory BIO: until then the syscall
 * tracepoints skip the per-thread lookup (every process's reads and writes
 * pass through them). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} mem_on SEC(".maps");

static __always_inline int mem_any(void)
{
	__u32 zero = 0;
	__u32 *on = bpf_map_lookup_elem(&mem_on, &zero);
	return on && *on;
}

/* This thread uses a memory BIO: watch its socket reads and writes. */
static __always_inline struct mem_thread *mem_watch(void)
{
	__u32 zero = 0;
	__u32 *on = bpf_map_lookup_elem(&mem_on, &zero);
	if (on && !*on)
		*on = 1;
	__u64 id = bpf_get_current_pid_tgid();
	struct mem_thread *t = bpf_map_lookup_elem(&mem_threads, &id);
	if (t)
		return t;
	struct mem_thread fresh = {};
	bpf_map_update_elem(&mem_threads, &id, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&mem_threads, &id);
}

/* Whether the first n bytes of a and b are equal (n <= MEM_HEAD). */
static __always_inline int head_eq(const __u8 *a, const __u8 *b, __u32 n)
{
	for (int i = 0; i < MEM_HEAD; i++) {
		if (i >= n)
			break;
		if (a[i] != b[i])
			return 0;
	}
	return 1;
}

/* conn is about to decrypt ciphertext starting with head[0..len): the fd of
 * the thread's recent socket read that started so is conn's. */
static __always_inline void mem_match_recv(__u64 conn, const __u8 *head, __u32 len)
{
	struct mem_thread *t = mem_watch();
	if (!t || len < MEM_MATCH_MIN)
		return;
	for (int i = 0; i < MEM_READS; i++) {
		struct mem_read *r = &t->reads[i];
		__u32 n = r->len < len ? r->len : len;
		if (n >= MEM_MATCH_MIN && head_eq(r->head, head, n) && sock_of_fd(r->fd)) {
			conn_fd_set(conn, r->fd);
			return;
		}
	}
}

/* conn just produced ciphertext starting with head[0..len): the socket the
 * thread next writes it to is conn's. */
static __always_inline void mem_expect_send(__u64 conn, const __u8 *head, __u32 len)
{
	struct mem_thread *t = mem_watch();
	if (!t || len < MEM_MATCH_MIN)
		return;
	t->send_conn = conn;
	t->send_len = len;
	__builtin_memcpy(t->send_head, head, MEM_HEAD);
}

/* sys_enter of a watched thread: remember a read's buffer; compare a
 * write's first bytes with the ciphertext expected. */
static __always_inline void mem_sys_enter(__u64 nr, struct pt_regs *regs)
{
	if (!mem_any())
		return;
	__u64 id = bpf_get_current_pid_tgid();
	struct mem_thread *t = bpf_map_lookup_elem(&mem_threads, &id);
	if (!t)
		return;
	__s64 fd = (__s64)PT_REGS_PARM1_CORE_SYSCALL(regs);
	__u64 buf = PT_REGS_PARM2_CORE_SYSCALL(regs);
	if (fd < 0 || fd > 0x7fffffff)
		return;
	if (nr == NR_READ || nr == NR_RECVFROM) {
		t->read_buf = buf;
		t->read_fd = (__s32)fd;
		return;
	}
	__u64 count = PT_REGS_PARM3_CORE_SYSCALL(regs);
	if (!t->send_len || count < MEM_MATCH_MIN)
		return;
	__u8 head[MEM_HEAD] = {};
	__u32 n = t->send_len < count ? t->send_len : (__u32)count;
	if (n > MEM_HEAD)
		n = MEM_HEAD;
	if (bpf_probe_read_user(head, MEM_HEAD, (void *)buf) && bpf_probe_read_user(head, MEM_MATCH_MIN, (void *)buf))
		return;
	if (head_eq(head, t->send_head, n) && sock_of_fd((__s32)fd)) {
		conn_fd_set(t->send_conn, (__s32)fd);
		t->send_len = 0;
	}
}

/* sys_exit: a watched thread's read returned; keep its first bytes. */
SEC("raw_tracepoint/sys_exit")
int sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	if (!mem_any())
		return 0;
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	__u64 nr = SYSCALL_NR(regs);
	if (nr != NR_READ && nr != NR_RECVFROM)
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	struct mem_thread *t = bpf_map_lookup_elem(&mem_threads, &id);
	if (!t || !t->read_buf)
		return 0;
	long ret = (long)ctx->args[1];
	__u64 buf = t->read_buf;
	t->read_buf = 0;
	if (ret <= 0)
		return 0;
	__u32 idx = t->next & (MEM_READS - 1);
	struct mem_read *r = &t->reads[idx];
	__u32 n = ret < MEM_HEAD ? (__u32)ret : MEM_HEAD;
	if (bpf_probe_read_user(r->head, MEM_HEAD, (void *)buf))
		return 0;
	r->fd = t->read_fd;
	r->len = n;
	t->next++;
	return 0;
}

/* One raw tracepoint on sys_enter rather than eight syscall tracepoints:
 * raw tracepoints are attached by name and need no tracefs mount, which many
 * hosts (and containers) do not have. Syscall numbers: bpf/arch.h. */
SEC("raw_tracepoint/sys_enter")
int sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	switch (ctx->args[1]) {
	case NR_READ:
	case NR_WRITE:
	case NR_READV:
	case NR_WRITEV:
	case NR_SENDTO:
	case NR_RECVFROM:
	case NR_SENDMSG:
	case NR_RECVMSG:
		break;
	default:
		return 0;
	}
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	switch (ctx->args[1]) {
	case NR_READ:
	case NR_WRITE:
	case NR_SENDTO:
	case NR_RECVFROM:
		mem_sys_enter(ctx->args[1], regs);
	}
	if (!count_nonzero(&fds_wanted))
		return 0;
	return note_fd(regs);
}

/* ---- records ---------------------------------------------------------------- */

/* The library freed conn: a close record, and its fd is forgotten. */
static __always_inline void emit_close(__u64 conn)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (filtered_out(id) || !conn)
		return;
	struct conn_key k = {.tgid = id >> 32, .conn = conn};
	bpf_map_delete_elem(&conn_fds, &k);
	struct close_rec r = {};
	r.h.ts_ns = bpf_ktime_get_ns();
	r.h.kind = REC_CLOSE;
	r.h.source = common_cfg.source;
	r.conn = conn;
	r.pid = id >> 32;
	r.tid = (__u32)id;
	output(&r, sizeof(r));
}

/* The SECRET_* of a key log label, told by its length and first byte
 * (the libraries pass only the NSS key log labels); 0: another. */
static __always_inline __u32 secret_label(__u64 len, char first)
{
	switch (len) {
	case 13: /* CLIENT_RANDOM */
		return first == 'C' ? SECRET_CLIENT_RANDOM : 0;
	case 31: /* CLIENT_ / SERVER_HANDSHAKE_TRAFFIC_SECRET */
		return first == 'C' ? SECRET_CLIENT_HANDSHAKE : first == 'S' ? SECRET_SERVER_HANDSHAKE : 0;
	case 23: /* CLIENT_ / SERVER_TRAFFIC_SECRET_0 */
		return first == 'C' ? SECRET_CLIENT_TRAFFIC_0 : first == 'S' ? SECRET_SERVER_TRAFFIC_0 : 0;
	case 15: /* EXPORTER_SECRET */
		return first == 'E' ? SECRET_EXPORTER : 0;
	case 27: /* CLIENT_EARLY_TRAFFIC_SECRET */
		return first == 'C' ? SECRET_CLIENT_EARLY : 0;
	}
	return 0;
}

/* One key log secret handed out whole by the library (Go's writeKeyLog,
 * BoringSSL's ssl_log_secret): label (SECRET_*), the 32-byte client random
 * and len bytes of secret at user addresses. Nothing is sent when either
 * is unreadable or len is out of bounds (no partial secret ever). */
static __always_inline void emit_secret(__u64 conn, __u32 label, const void *client_random, const void *secret, __u64 len)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!label || len < 16 || len > SECRET_MAX)
		return;
	struct secret_rec r = {};
	if (bpf_probe_read_user(r.client_random, CLIENT_RANDOM_LEN, client_random)) {
		count(STAT_READ_USER_FAIL);
		return;
	}
	__u32 n = len;
	asm volatile("%0 &= 0x7f" : "+r"(n)); /* the verifier sees n's bound */
	if (n > SECRET_MAX || bpf_probe_read_user(r.secret, n, secret)) {
		count(STAT_READ_USER_FAIL);
		return;
	}
	r.h.ts_ns = bpf_ktime_get_ns();
	r.h.kind = REC_SECRET;
	r.h.source = common_cfg.source;
	r.conn = conn;
	r.pid = id >> 32;
	r.label = label;
	r.secret_len = n;
	output(&r, sizeof(r));
}

struct emit_ctx {
	__u64 src;
	__u32 slot;
	__u32 captured;
};

/* Sends chunk i of the call; 1 once past its end. A function of its own
 * (bpf_loop's callback, and not inlined into the compat build's loop): what
 * its branches learn stays inside it, so the verifier's paths meet again
 * after each chunk instead of multiplying with every one. */
static __noinline long emit_chunk(__u32 i, void *arg)
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
	output(&s->hdr, sizeof(s->hdr) + len);
	return 0;
}

#ifndef ECAP_COMPAT
/* A free scratch slot of this CPU, taken with a compare-and-swap: a uprobe
 * program may be preempted by another on the same CPU. */
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

static __always_inline void release_slot(__u32 slot)
{
	struct scratch *s = bpf_map_lookup_elem(&scratch, &slot);
	if (s)
		__sync_lock_test_and_set(&s->busy, 0);
}

/* Sends chunks 0.. of the call with bpf_loop (one verified body). */
static __always_inline void emit_chunks(struct emit_ctx *ec)
{
	bpf_loop(common_cfg.max_chunks, emit_chunk, ec, 0);
}
#else
/* This CPU's first slot: no other uprobe program can run on this CPU
 * meanwhile on the kernels this variant is for (see the top of this file). */
static __always_inline int claim_slot(__u32 *slot_out)
{
	*slot_out = bpf_get_smp_processor_id() * SCRATCH_SLOTS;
	return 0;
}

static __always_inline void release_slot(__u32 slot)
{
}

/* Sends chunks 0.. of the call in a bounded loop: its bound, from .rodata,
 * is known to the verifier (and never above what the largest cap needs). */
static __always_inline void emit_chunks(struct emit_ctx *ec)
{
	__u32 n = common_cfg.max_chunks;
#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < n && i < MAX_CAPTURE_CAP / CHUNK_DATA_SIZE; i++) {
		if (emit_chunk(i, ec))
			break;
	}
}
#endif

/* Sends the n bytes call c moved (up to the capture cap) as chunk records. */
static __always_inline void call_emit(const struct call_ctx *c, __u64 n, struct call_info *info)
{
	__u32 slot;
	if (claim_slot(&slot)) {
		count(STAT_SLOT_BUSY);
		return;
	}
	struct scratch *s = bpf_map_lookup_elem(&scratch, &slot);
	if (!s)
		return;

	__u64 id = bpf_get_current_pid_tgid();
	struct chunk_rec *h = &s->hdr;
	__builtin_memset(h, 0, sizeof(*h));
	h->h.ts_ns = bpf_ktime_get_ns();
	h->h.kind = REC_CHUNK;
	h->h.source = common_cfg.source;
	h->call_id = id;
	h->conn = c->conn;
	h->pid = id >> 32;
	h->tid = (__u32)id;
	h->uid = c->uid;
	h->fd = info->fd;
	h->total_len = n > 0xffffffffULL ? 0xffffffff : (__u32)n;
	__u32 cap = common_cfg.capture_cap;
	if (cap > MAX_CAPTURE_CAP)
		cap = MAX_CAPTURE_CAP;
	h->captured_len = n > cap ? cap : (__u32)n;
	__u8 flags = info->flags;
	if (n > cap)
		flags |= CHUNK_F_TRUNCATED;
	h->tls_version = info->tls_version;
	h->lib_idx = c->lib_idx;
	h->dir = c->dir;
	h->flags = flags;
	bpf_get_current_comm(h->comm, sizeof(h->comm));
	struct sock_tuple *t = &info->tuple;
	if (!t->family && info->fd >= 0) /* an fd the module found itself (OpenSSL's BIO) */
		read_tuple(t, sock_of_fd(info->fd));
	h->family = t->family;
	h->lport = t->lport;
	h->rport = t->rport;
	__builtin_memcpy(h->laddr, t->laddr, sizeof(h->laddr));
	__builtin_memcpy(h->raddr, t->raddr, sizeof(h->raddr));

	struct emit_ctx ec = {
		.src = c->buf,
		.slot = slot,
		.captured = h->captured_len,
	};
	emit_chunks(&ec);
	release_slot(slot);
}

#endif /* ECAPTURE_COMMON_H */
