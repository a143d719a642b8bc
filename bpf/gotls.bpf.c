// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The `gotls` module: Go's crypto/tls, compiled into each Go executable.
 * One object per executable (its offsets in gotls_cfg).
 *
 * Calls: crypto/tls.(*Conn).Write and (*Conn).Read. Go 1.17+ passes
 * arguments and results in registers (ABIInternal): the receiver in rax,
 * the slice's pointer and length in rbx and rcx; the results, n and the
 * error, in rax and rbx..rcx. The current goroutine (g) is in r14. (On
 * arm64: x0, x1, x2 and g in x28; bpf/arch.h's GO_* macros.)
 *
 * No uretprobes: a uretprobe replaces the return address on the stack, and
 * Go copies goroutine stacks when they grow (and walks them for the GC and
 * for tracebacks): the program crashes. Userspace finds every RET
 * instruction of the two functions by decoding them from their start and
 * attaches gotls_ret at each: the result is read there, in rax.
 *
 * A goroutine can move from one OS thread to another between a call's
 * entry and its return, so calls are remembered per goroutine (tgid, g),
 * not per thread (and not in the shared per-thread `active` table). Its
 * end: (*Conn).Close.
 *
 * The fd: the socket reads and writes of a tls.Conn's call go through
 * internal/poll.(*FD).Read / Write on the call's goroutine, with the
 * poll.FD (and its Sysfd) as receiver; a uprobe there gives the call its
 * fd, whatever thread the goroutine runs on by then, and it is remembered
 * for the tls.Conn. The handshake is followed the same way, so that a
 * first Read served from what the handshake already read has it too.
 *
 * Secrets (-m keylog, -k): crypto/tls.(*Config).writeKeyLog at entry. Go
 * calls it for every secret of every handshake and only then looks whether
 * the program set a KeyLogWriter, so it fires whether or not one is set.
 * The handshake runs on the goroutine that called handshakeContext (or the
 * Read or Write that started it): its go_calls entry names the tls.Conn.
 */
#include "common.h"

const volatile struct gotls_cfg gotls_cfg = {};

struct go_key {
	__u64 g;
	__u32 tgid;
	__u32 _pad;
};

/* A call in progress on one goroutine. */
struct go_call {
	__u64 conn;
	__u64 buf;
	__s32 fd; /* from internal/poll during the call, or -1 */
	__u8 dir; /* DIR_*, or GO_HANDSHAKE */
	__u8 _pad[3];
};

/* Calls in progress, per goroutine. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_key);
	__type(value, struct go_call);
} go_calls SEC(".maps");

/* The call in progress on the current goroutine (key in *k), or NULL. */
static __always_inline struct go_call *go_call_of(struct pt_regs *ctx, struct go_key *k)
{
	k->g = GO_G(ctx);
	k->tgid = bpf_get_current_pid_tgid() >> 32;
	k->_pad = 0;
	return bpf_map_lookup_elem(&go_calls, k);
}

/* go_calls' dir of a handshake: not captured, only followed for its fd. */
#define GO_HANDSHAKE 0xff

static __always_inline void go_entry(struct pt_regs *ctx, __u8 dir)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (filtered_out(id))
		return;
	struct go_call c = {};
	c.conn = GO_PARM1(ctx);
	c.buf = GO_PARM2(ctx);
	c.fd = -1;
	c.dir = dir;
	struct go_key k = {.g = GO_G(ctx), .tgid = id >> 32};
	/* The entry may run twice for one call: when the goroutine's stack
	 * must grow first, the function starts over after morestack. A
	 * handshake inside a Read or Write leaves that call in place. */
	if (bpf_map_update_elem(&go_calls, &k, &c, dir == GO_HANDSHAKE ? BPF_NOEXIST : BPF_ANY) && dir != GO_HANDSHAKE)
		count(STAT_ACTIVE_FULL);
}

/* func (c *Conn) Write(b []byte) (int, error) */
SEC("uprobe")
int gotls_write_entry(struct pt_regs *ctx)
{
	go_entry(ctx, DIR_WRITE);
	return 0;
}

/* func (c *Conn) Read(b []byte) (int, error) */
SEC("uprobe")
int gotls_read_entry(struct pt_regs *ctx)
{
	go_entry(ctx, DIR_READ);
	return 0;
}

/* func (c *Conn) handshakeContext(ctx context.Context) error: its socket
 * I/O tells the connection's fd before its first Read or Write, which may
 * be served from what the handshake already read. */
SEC("uprobe")
int gotls_handshake_entry(struct pt_regs *ctx)
{
	go_entry(ctx, GO_HANDSHAKE);
	return 0;
}

/* At each RET of handshakeContext. */
SEC("uprobe")
int gotls_handshake_ret(struct pt_regs *ctx)
{
	struct go_key k;
	struct go_call *cp = go_call_of(ctx, &k);
	if (cp && cp->dir == GO_HANDSHAKE)
		bpf_map_delete_elem(&go_calls, &k);
	return 0;
}

/* func (fd *FD) Read(p []byte) (int, error) and Write, of internal/poll:
 * inside a tls.Conn call (or handshake) of this goroutine, the socket is
 * fd.Sysfd: the call's, and remembered for the connection. */
SEC("uprobe")
int gotls_poll_entry(struct pt_regs *ctx)
{
	struct go_key k;
	struct go_call *c = go_call_of(ctx, &k);
	if (!c || c->fd >= 0 || !(gotls_cfg.flags & GOTLS_F_SYSFD))
		return 0;
	__s64 fd = -1;
	if (bpf_probe_read_user(&fd, sizeof(fd), (void *)(GO_PARM1(ctx) + gotls_cfg.sysfd)))
		return 0;
	if (fd >= 0 && fd < 0x7fffffff && sock_of_fd((__s32)fd)) {
		c->fd = (__s32)fd;
		conn_fd_set(c->conn, (__s32)fd);
	}
	return 0;
}

/* At each RET of Write and Read: n in rax. */
SEC("uprobe")
int gotls_ret(struct pt_regs *ctx)
{
	struct go_key k;
	struct go_call *gp = go_call_of(ctx, &k);
	if (!gp || gp->dir == GO_HANDSHAKE)
		return 0;
	struct go_call g = *gp;
	bpf_map_delete_elem(&go_calls, &k);
	long n = (long)GO_RET1(ctx);
	if (n <= 0)
		return 0;

	struct call_ctx c = {};
	c.uid = (__u32)bpf_get_current_uid_gid();
	c.conn = g.conn;
	c.buf = g.buf;
	c.dir = g.dir;
	struct call_info info = {};
	if (g.fd >= 0) {
		/* internal/poll's fd, checked (and its tuple taken from the
		 * connection's state) as a syscall's would be */
		c.fds[0] = g.fd;
		c.nfds = 1;
	}
	struct conn_state *st = call_fd(&c, &info); /* else the one remembered for the tls.Conn */
	if (g.fd >= 0 && info.fd == g.fd)
		info.flags = (info.flags & ~CHUNK_F_FD_SYSCALL) | CHUNK_F_FD_LIB;
	if (!meta_known(st, &info)) {
		if (gotls_cfg.flags & GOTLS_F_ROLE) {
			__u8 client = 0;
			if (!bpf_probe_read_user(&client, 1, (void *)(c.conn + gotls_cfg.is_client)) && client <= 1)
				info.flags |= CHUNK_F_ROLE_KNOWN | (client ? 0 : CHUNK_F_SERVER);
		}
		if (gotls_cfg.flags & GOTLS_F_VERS) {
			__u16 vers = 0;
			if (!bpf_probe_read_user(&vers, 2, (void *)(c.conn + gotls_cfg.vers)) && vers >= 0x0300 && vers <= 0x0304)
				info.tls_version = vers;
		}
		meta_remember(st, &info);
	}
	call_emit(&c, (__u64)n, &info);
	return 0;
}

/* func (c *Conn) Close() error: the connection is over. */
SEC("uprobe")
int gotls_close_entry(struct pt_regs *ctx)
{
	emit_close(GO_PARM1(ctx));
	return 0;
}

/* func (c *Config) writeKeyLog(label string, clientRandom, secret []byte) error:
 * rax c; rbx, rcx label; rdi, rsi, r8 clientRandom; r9, r10, r11 secret
 * (arguments 1 to 9: GO_PARM1..9, x0..x8 on arm64). */
SEC("uprobe")
int gotls_keylog_entry(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (filtered_out(id) || GO_PARM5(ctx) != CLIENT_RANDOM_LEN)
		return 0;
	char first = 0;
	if (bpf_probe_read_user(&first, 1, (void *)GO_PARM2(ctx)))
		return 0;
	__u32 label = secret_label(GO_PARM3(ctx), first);
	if (!label)
		return 0;
	struct go_key k;
	struct go_call *c = go_call_of(ctx, &k);
	emit_secret(c ? c->conn : 0, label, (void *)GO_PARM4(ctx), (void *)GO_PARM7(ctx), GO_PARM8(ctx));
	return 0;
}
