// SPDX-License-Identifier: Apache-2.0
/*
 * reuse_ssl PORT...: one SSL object for a connection to each port in turn
 * (SSL_clear between), each new socket taking the closed one's fd number
 * (and, as often as not, its kernel file object). Writes "hello via port
 * PORT" on each. Prints "fds A B ..." at the end. For tests/e2e.rs: the
 * tuple ecapture remembers for the SSL must follow it to the new socket.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "reuse_ssl: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IONBF, 0);
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		die("SSL_CTX_new");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL *ssl = SSL_new(ctx);
	if (!ssl)
		die("SSL_new");
	printf("fds");
	for (int i = 1; i < argc; i++) {
		int port = atoi(argv[i]);
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			die("connect");
		if (!SSL_set_fd(ssl, fd))
			die("SSL_set_fd");
		int rc = SSL_connect(ssl);
		if (rc != 1) {
			fprintf(stderr, "reuse_ssl: SSL_connect: %d, error %d\n", rc, SSL_get_error(ssl, rc));
			die("handshake");
		}
		char msg[64];
		int n = snprintf(msg, sizeof(msg), "hello via port %d\n", port);
		if (SSL_write(ssl, msg, n) != n)
			die("write");
		SSL_shutdown(ssl);
		close(fd);
		if (!SSL_clear(ssl))
			die("SSL_clear");
		printf(" %d", fd);
	}
	printf("\n");
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return 0;
}
