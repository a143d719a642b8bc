// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The `gnutls` module: GnuTLS plaintext. One object per library (its
 * offsets in gnutls_cfg), so no attach cookies are needed and the compat
 * build is the same code.
 *
 * Calls: gnutls_record_send / send2 / send_range / send_early_data and
 * gnutls_record_recv / recv_seq / recv_early_data (entry: remember; return:
 * send what moved). gnutls_record_send is a thin wrapper of send2 where
 * send2 exists: userspace hooks one of the two, never both. While corked
 * (gnutls_record_cork) a send only buffers and is captured then;
 * gnutls_record_uncork sends the buffer through gnutls_record_send again,
 * so sends inside an uncork are not captured a second time.
 *
 * The connection is the gnutls_session_t. Its fd: a socket syscall made
 * during the call, or what gnutls_transport_set_int2 / set_ptr / set_ptr2
 * told us (when the value is a socket of the process). Its end:
 * gnutls_deinit. TLS version and role from the session, through the
 * version's offsets.
 */
#include "common.h"

const volatile struct gnutls_cfg gnutls_cfg = {};

/* gnutls_protocol_t */
#define GNUTLS_SSL3 1
#define GNUTLS_TLS1_0 2
#define GNUTLS_TLS1_1 3
#define GNUTLS_TLS1_2 4
#define GNUTLS_TLS1_3 5
#define GNUTLS_DTLS1_0 201
#define GNUTLS_DTLS1_2 202
/* gnutls_init's flags / security_parameters.entity */
#define GNUTLS_SERVER 1
#define GNUTLS_CLIENT 2

/* Threads inside gnutls_record_uncork. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u8);
} gnutls_uncorking SEC(".maps");

/* How many threads are in gnutls_uncorking: while none is, a send does not
 * look itself up there (almost no program corks). */
COUNT_MAP(gnutls_uncorks);

static __always_inline int uncorking(__u64 id)
{
	return count_nonzero(&gnutls_uncorks) && bpf_map_lookup_elem(&gnutls_uncorking, &id);
}

static __always_inline void rw_entry(__u64 session, __u64 buf, __u8 dir)
{
	if (dir == DIR_WRITE && uncorking(bpf_get_current_pid_tgid()))
		return;
	call_begin(session, buf, 0, 0, dir, 0);
}

/* (session, data, size, ...) for every variant but send_range. */
SEC("uprobe")
int BPF_KPROBE(gnutls_send_entry, void *session, void *data)
{
	rw_entry((__u64)session, (__u64)data, DIR_WRITE);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(gnutls_recv_entry, void *session, void *data)
{
	rw_entry((__u64)session, (__u64)data, DIR_READ);
	return 0;
}

/* gnutls_record_send_range(session, data, size, const gnutls_range_st *range) */
SEC("uprobe")
int BPF_KPROBE(gnutls_send_range_entry, void *session, void *data)
{
	rw_entry((__u64)session, (__u64)data, DIR_WRITE);
	return 0;
}

static __always_inline __u32 wire_version(__u32 id)
{
	switch (id) {
	case GNUTLS_SSL3:
		return 0x0300;
	case GNUTLS_TLS1_0:
		return 0x0301;
	case GNUTLS_TLS1_1:
		return 0x0302;
	case GNUTLS_TLS1_2:
		return 0x0303;
	case GNUTLS_TLS1_3:
		return 0x0304;
	case GNUTLS_DTLS1_0:
		return 0xfeff;
	case GNUTLS_DTLS1_2:
		return 0xfefd;
	}
	return 0;
}

/* Every variant returns the bytes moved (ssize_t), or a negative error. */
SEC("uretprobe")
int BPF_KRETPROBE(gnutls_rw_return)
{
	struct call_ctx c;
	if (call_take(&c))
		return 0;
	long ret = PT_REGS_RC(ctx);
	if (ret <= 0)
		return 0;

	struct call_info info = {};
	struct conn_state *st = call_fd(&c, &info);
	if (!meta_known(st, &info) && gnutls_cfg.valid) {
		__u64 ver = 0;
		__u32 id = 0, entity = 0;
		if (!bpf_probe_read_user(&ver, sizeof(ver), (void *)(c.conn + gnutls_cfg.pversion)) && ver &&
		    !bpf_probe_read_user(&id, sizeof(id), (void *)(ver + gnutls_cfg.version_id)))
			info.tls_version = wire_version(id);
		if (!bpf_probe_read_user(&entity, sizeof(entity), (void *)(c.conn + gnutls_cfg.entity)) &&
		    (entity == GNUTLS_SERVER || entity == GNUTLS_CLIENT))
			info.flags |= CHUNK_F_ROLE_KNOWN | (entity == GNUTLS_SERVER ? CHUNK_F_SERVER : 0);
		meta_remember(st, &info);
	}
	call_emit(&c, (__u64)ret, &info);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(gnutls_uncork_entry)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u8 one = 1;
	if (!filtered_out(id) && !bpf_map_update_elem(&gnutls_uncorking, &id, &one, BPF_NOEXIST))
		count_add(&gnutls_uncorks, 1);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(gnutls_uncork_return)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!bpf_map_delete_elem(&gnutls_uncorking, &id))
		count_add(&gnutls_uncorks, -1);
	return 0;
}

/* The session's transport, when it is a socket of this process. */
static __always_inline void transport(__u64 session, __u64 value)
{
	if (filtered_out(bpf_get_current_pid_tgid()) || value > 0x7fffffff)
		return;
	if (sock_of_fd((__s32)value))
		conn_fd_set(session, (__s32)value);
}

/* gnutls_transport_set_int2(session, recv_fd, send_fd) */
SEC("uprobe")
int BPF_KPROBE(gnutls_set_int2_entry, void *session, int recv_fd, int send_fd)
{
	transport((__u64)session, (__u64)(long)send_fd);
	return 0;
}

/* gnutls_transport_set_ptr(session, ptr): programs pass the fd as the pointer. */
SEC("uprobe")
int BPF_KPROBE(gnutls_set_ptr_entry, void *session, void *ptr)
{
	transport((__u64)session, (__u64)ptr);
	return 0;
}

/* gnutls_transport_set_ptr2(session, recv_ptr, send_ptr) */
SEC("uprobe")
int BPF_KPROBE(gnutls_set_ptr2_entry, void *session, void *recv_ptr, void *send_ptr)
{
	transport((__u64)session, (__u64)send_ptr);
	return 0;
}

/* gnutls_deinit(session): the connection is over. */
SEC("uprobe")
int BPF_KPROBE(gnutls_deinit_entry, void *session)
{
	emit_close((__u64)session);
	return 0;
}
