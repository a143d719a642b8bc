/*
 * A TLS client and server for ecapture's BoringSSL tests (tests/boringssl.rs),
 * linked statically with BoringSSL built from source by
 * tests/boringssl/build.sh: one executable whose SSL_read/SSL_write are
 * BoringSSL's, symbols present, as in programs that vendor BoringSSL.
 *
 *   bssl_peer server PORT CERT KEY
 *       listens on 127.0.0.1:PORT, prints "listening PORT" once it does,
 *       serves one connection: reads one request (a head with
 *       Content-Length, then the body) and answers
 *       "HTTP/1.1 200 OK ... got N bytes\n"; then exits.
 *   bssl_peer client PORT [tls12] [wait]
 *       connects to 127.0.0.1:PORT (with "wait": only after a line on
 *       stdin, so that a tracer can attach to this pid first), writes
 *       "PUT /bssl HTTP/1.1" with a 1 MiB body: the head in one SSL_write,
 *       the body in ONE SSL_write; reads the answer, prints it, exits 0
 *       when the server confirmed the length. "tls12": TLS 1.2 at most.
 *       With SSLKEYLOGFILE set, BoringSSL's own key log lines
 *       (SSL_CTX_set_keylog_callback) are appended to that file: the
 *       reference the key log tests compare ecapture's lines with.
 *
 * The body is the tests' pattern (tests/util pattern()): lines
 * "%08d the quick brown fox jumps over the lazy dog\n", cut at 1 MiB.
 * The connection uses SSL_set_fd: BoringSSL's socket BIO.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define BODY_SIZE (1 << 20)

static void die(const char *what)
{
	fprintf(stderr, "bssl_peer: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static char *pattern(size_t n)
{
	char *p = malloc(n + 64);
	size_t len = 0;
	if (!p)
		die("out of memory");
	for (unsigned i = 0; len < n; i++)
		len += (size_t)sprintf(p + len, "%08u the quick brown fox jumps over the lazy dog\n", i);
	return p;
}

static void write_all(SSL *ssl, const char *buf, size_t len)
{
	/* Blocking, no partial writes: one SSL_write moves all of it. */
	int n = SSL_write(ssl, buf, (int)len);
	if (n != (int)len)
		die("SSL_write");
}

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

/* Reads until the head and Content-Length body bytes are in; returns the
 * body length. */
static size_t read_request(SSL *ssl)
{
	static char buf[BODY_SIZE + 4096];
	size_t have = 0, want = 0, head = 0;
	for (;;) {
		int n = SSL_read(ssl, buf + have, (int)(sizeof(buf) - 1 - have));
		if (n <= 0)
			die("SSL_read (server)");
		have += (size_t)n;
		buf[have] = 0;
		if (!head) {
			char *end = strstr(buf, "\r\n\r\n");
			char *cl = strstr(buf, "Content-Length: ");
			if (!end)
				continue;
			if (!cl)
				die("request without Content-Length");
			head = (size_t)(end + 4 - buf);
			want = strtoul(cl + 16, NULL, 10);
		}
		if (have - head >= want)
			return have - head;
		if (have == sizeof(buf) - 1)
			die("request too large");
	}
}

static int server(int port, const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		die("server context");
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = loopback(port);
	socklen_t alen = sizeof(a);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 1) ||
	    getsockname(ls, (struct sockaddr *)&a, &alen))
		die("listen");
	printf("listening %d\n", ntohs(a.sin_port));
	fflush(stdout);

	int fd = accept(ls, NULL, NULL);
	if (fd < 0)
		die("accept");
	SSL *ssl = SSL_new(ctx);
	if (!ssl || !SSL_set_fd(ssl, fd) || SSL_accept(ssl) != 1)
		die("SSL_accept");
	size_t got = read_request(ssl);
	char body[64], resp[256];
	int blen = snprintf(body, sizeof(body), "got %zu bytes\n", got);
	int rlen = snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", blen, body);
	write_all(ssl, resp, (size_t)rlen);
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(fd);
	close(ls);
	SSL_CTX_free(ctx);
	return 0;
}

static FILE *keylog_file;

static void keylog_line(const SSL *ssl, const char *line)
{
	(void)ssl;
	fprintf(keylog_file, "%s\n", line);
	fflush(keylog_file);
}

static int client(int port, int tls12, int wait)
{
	char *body = pattern(BODY_SIZE);
	char head[128], resp[4096];
	int hlen = snprintf(head, sizeof(head), "PUT /bssl HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n",
			    BODY_SIZE);
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	if (!ctx || (tls12 && !SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION)))
		die("client context");
	const char *keylog = getenv("SSLKEYLOGFILE");
	if (keylog && *keylog) {
		keylog_file = fopen(keylog, "a");
		if (!keylog_file)
			die("cannot open SSLKEYLOGFILE");
		SSL_CTX_set_keylog_callback(ctx, keylog_line);
	}
	if (wait) {
		char line[16];
		printf("ready\n");
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			die("stdin closed before the go line");
	}
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = loopback(port);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		die("connect");
	SSL *ssl = SSL_new(ctx);
	if (!ssl || !SSL_set_fd(ssl, fd) || SSL_connect(ssl) != 1)
		die("SSL_connect");
	write_all(ssl, head, (size_t)hlen);
	write_all(ssl, body, BODY_SIZE);
	size_t have = 0;
	for (;;) {
		int n = SSL_read(ssl, resp + have, (int)(sizeof(resp) - 1 - have));
		if (n <= 0)
			break;
		have += (size_t)n;
		resp[have] = 0;
		if (strstr(resp, "bytes\n"))
			break;
	}
	resp[have] = 0;
	fputs(resp, stdout);
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(fd);
	SSL_CTX_free(ctx);
	free(body);
	char want[64];
	snprintf(want, sizeof(want), "got %d bytes\n", BODY_SIZE);
	return strstr(resp, want) ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "server"))
		return server(atoi(argv[2]), argv[3], argv[4]);
	if (argc >= 3 && !strcmp(argv[1], "client")) {
		int tls12 = 0, wait = 0;
		for (int i = 3; i < argc; i++) {
			if (!strcmp(argv[i], "tls12"))
				tls12 = 1;
			else if (!strcmp(argv[i], "wait"))
				wait = 1;
			else
				die("usage: bssl_peer client PORT [tls12] [wait]");
		}
		return client(atoi(argv[2]), tls12, wait);
	}
	fprintf(stderr, "usage: bssl_peer server PORT CERT KEY | bssl_peer client PORT [tls12] [wait]\n");
	return 2;
}
