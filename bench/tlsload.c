// SPDX-License-Identifier: Apache-2.0
/*
 * tlsload: the TLS load `make bench` measures ecapture against. One process,
 * the system's libssl, loopback TCP: C connections, each a client thread
 * doing N SSL_write calls of S bytes (optionally at a fixed rate) and a
 * server thread reading them with SSL_read. Prints one JSON line:
 *
 *   {"writes":N*C,"bytes":...,"seconds":...,"us_per_write":...,"writes_per_s":...}
 *
 *   tlsload CERT KEY [-n writes] [-s size] [-c conns] [-r writes/s per conn] [-t] [-H]
 *
 * -t stamps each write: it carries "T<ns since epoch, 20 digits>:" (22
 * bytes, CLOCK_REALTIME at the SSL_write call) — at its start, or with -H
 * at the start of the body — so a consumer can measure latency.
 * -H makes each write a whole HTTP/1.1 request of `size` bytes (head and
 * body), so message assembly emits it at once instead of after an idle time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long n_writes = 10000, size = 64, conns = 1, rate = 0;
static int stamp = 0, http = 0;
static SSL_CTX *sctx, *cctx;

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "tlsload: %s: %s\n", what, errno ? strerror(errno) : "");
	ERR_print_errors_fp(stderr);
	exit(1);
}

struct conn {
	int lfd, port;
	double seconds;
};

static void *server(void *arg)
{
	struct conn *c = arg;
	int fd = accept(c->lfd, NULL, NULL);
	if (fd < 0)
		die("accept");
	SSL *s = SSL_new(sctx);
	SSL_set_fd(s, fd);
	if (SSL_accept(s) != 1)
		die("SSL_accept");
	char buf[65536];
	long want = n_writes * size, got = 0;
	while (got < want) {
		int r = SSL_read(s, buf, sizeof(buf));
		if (r <= 0)
			die("SSL_read");
		got += r;
	}
	SSL_write(s, "k", 1); /* done: the client may close */
	SSL_shutdown(s);
	SSL_free(s);
	close(fd);
	return NULL;
}

static void *client(void *arg)
{
	struct conn *c = arg;
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(c->port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	SSL *s = SSL_new(cctx);
	SSL_set_fd(s, fd);
	if (SSL_connect(s) != 1)
		die("SSL_connect");
	char *buf = malloc(size > 128 ? size : 128);
	memset(buf, 'x', size);
	int body_at = 0;
	if (http) {
		char head[96];
		int n = 0, len = 0;
		/* The head's own length depends on the digits of the body length. */
		for (int i = 0; i < 3; i++)
			len = snprintf(head, sizeof(head), "POST /load HTTP/1.1\r\nContent-Length: %ld\r\n\r\n", size - n), n = len;
		if (size < len + 24)
			die("-H needs -s of at least 80 bytes");
		memcpy(buf, head, len);
		body_at = len;
	}
	uint64_t start = now_ns(CLOCK_MONOTONIC);
	for (long i = 0; i < n_writes; i++) {
		if (rate > 0) {
			uint64_t due = start + (uint64_t)(i * (1e9 / rate));
			uint64_t t = now_ns(CLOCK_MONOTONIC);
			if (t < due) {
				struct timespec d = {.tv_sec = (due - t) / 1000000000ull, .tv_nsec = (due - t) % 1000000000ull};
				nanosleep(&d, NULL);
			}
		}
		if (stamp && size >= 24) {
			char t[32];
			snprintf(t, sizeof(t), "T%020llu:", (unsigned long long)now_ns(CLOCK_REALTIME));
			memcpy(buf + body_at, t, 22);
		}
		if (SSL_write(s, buf, size) != size)
			die("SSL_write");
	}
	c->seconds = (now_ns(CLOCK_MONOTONIC) - start) / 1e9;
	char k;
	SSL_read(s, &k, 1);
	SSL_shutdown(s);
	SSL_free(s);
	close(fd);
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: tlsload CERT KEY [-n writes] [-s size] [-c conns] [-r rate] [-t] [-H]\n");
		return 2;
	}
	int opt;
	optind = 3;
	while ((opt = getopt(argc, argv, "n:s:c:r:tH")) != -1) {
		switch (opt) {
		case 'n': n_writes = atol(optarg); break;
		case 's': size = atol(optarg); break;
		case 'c': conns = atol(optarg); break;
		case 'r': rate = atol(optarg); break;
		case 't': stamp = 1; break;
		case 'H': http = 1; break;
		default: return 2;
		}
	}
	sctx = SSL_CTX_new(TLS_server_method());
	cctx = SSL_CTX_new(TLS_client_method());
	if (!sctx || !cctx || SSL_CTX_use_certificate_file(sctx, argv[1], SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(sctx, argv[2], SSL_FILETYPE_PEM) != 1)
		die("certificate");
	struct conn *cs = calloc(conns, sizeof(*cs));
	pthread_t *ts = calloc(conns * 2, sizeof(*ts));
	for (long i = 0; i < conns; i++) {
		int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		struct sockaddr_in sa = {.sin_family = AF_INET};
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		socklen_t len = sizeof(sa);
		if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0 ||
		    getsockname(lfd, (struct sockaddr *)&sa, &len) < 0)
			die("listen");
		cs[i].lfd = lfd;
		cs[i].port = ntohs(sa.sin_port);
		pthread_create(&ts[2 * i], NULL, server, &cs[i]);
	}
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	for (long i = 0; i < conns; i++)
		pthread_create(&ts[2 * i + 1], NULL, client, &cs[i]);
	for (long i = 0; i < conns * 2; i++)
		pthread_join(ts[i], NULL);
	double wall = (now_ns(CLOCK_MONOTONIC) - t0) / 1e9, busy = 0;
	for (long i = 0; i < conns; i++)
		busy += cs[i].seconds;
	long writes = n_writes * conns;
	printf("{\"writes\":%ld,\"bytes\":%ld,\"seconds\":%.6f,\"us_per_write\":%.3f,\"writes_per_s\":%.1f}\n", writes,
	       writes * size, wall, busy * 1e6 / writes, writes / wall);
	return 0;
}
