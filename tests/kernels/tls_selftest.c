/* tls_selftest: a TLS server thread and a client thread over 127.0.0.1 in one
 * process, OpenSSL linked in statically: the traffic of the kernel-matrix
 * tests (tests/kernels.rs), which run in VMs that have nothing else.
 *
 *   tls_selftest CERT KEY SIZE
 *
 * The client writes SIZE bytes of tests/util's pattern() in one SSL_write;
 * the server reads them (SSL_read until all are in), checks them byte for
 * byte and answers "ACK <SIZE>", which the client reads. Prints
 *   tls_selftest: OK pid=P server_port=S client_port=C bytes=N (OpenSSL x.y.z ...)
 * and exits 0 (printing the version also links OpenSSL's version string in,
 * as most programs do: ecapture finds the offsets by it), or "tls_selftest: FAIL ..." and exits 1. No name resolution,
 * no configuration file, no certificate verification.
 *
 * Build: gcc -static  -O2 -o tls_selftest tls_selftest.c -lssl -lcrypto -lpthread
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *cert_path, *key_path;
static char *message;
static int size, listen_fd = -1;
static volatile int server_failed;

static void fail(const char *what)
{
    fprintf(stderr, "tls_selftest: FAIL %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

/* tests/util/mod.rs pattern(): "%08d the quick brown fox ...\n" lines, cut to n. */
static char *pattern(int n)
{
    char *p = malloc(n + 64), line[64];
    int at = 0;
    for (int i = 0; at < n; i++) {
        int l = snprintf(line, sizeof line, "%08d the quick brown fox jumps over the lazy dog\n", i);
        memcpy(p + at, line, l);
        at += l;
    }
    return p;
}

/* Reads exactly n bytes (TLS delivers a large write in several records). */
static int read_full(SSL *ssl, char *buf, int n)
{
    int got = 0;
    while (got < n) {
        int r = SSL_read(ssl, buf + got, n - got);
        if (r <= 0)
            return -1;
        got += r;
    }
    return got;
}

static void *server(void *arg)
{
    SSL_CTX *ctx = arg;
    char *buf = malloc(size), ack[32];
    int fd = accept(listen_fd, NULL, NULL);
    if (fd < 0) {
        server_failed = 1;
        return NULL;
    }
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1 || read_full(ssl, buf, size) < 0 || memcmp(buf, message, size) != 0) {
        server_failed = 1;
    } else {
        int l = snprintf(ack, sizeof ack, "ACK %d", size);
        if (SSL_write(ssl, ack, l) != l)
            server_failed = 1;
    }
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
    free(buf);
    return NULL;
}

/* TLS_SELFTEST_KEYLOG=FILE: OpenSSL's own key log of the client's side
 * (SSL_CTX_set_keylog_callback), appended: tests/keylog.rs compares
 * ecapture's key log with it. */
static FILE *keylog;

static void keylog_line(const SSL *ssl, const char *line)
{
    (void)ssl;
    fprintf(keylog, "%s\n", line);
    fflush(keylog);
}

int main(int argc, char **argv)
{
    if (argc != 4 || (size = atoi(argv[3])) < 1) {
        fprintf(stderr, "usage: %s CERT KEY SIZE\n", argv[0]);
        return 2;
    }
    cert_path = argv[1];
    key_path = argv[2];
    message = pattern(size);

    /* No openssl.cnf lookup: the guest has none. */
    OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    if (!sctx || !cctx)
        fail("SSL_CTX_new");
    const char *keylog_path = getenv("TLS_SELFTEST_KEYLOG");
    if (keylog_path) {
        if (!(keylog = fopen(keylog_path, "a")))
            fail("opening TLS_SELFTEST_KEYLOG");
        SSL_CTX_set_keylog_callback(cctx, keylog_line);
    }
    if (SSL_CTX_use_certificate_chain_file(sctx, cert_path) != 1)
        fail("loading the certificate");
    if (SSL_CTX_use_PrivateKey_file(sctx, key_path, SSL_FILETYPE_PEM) != 1)
        fail("loading the key");

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)}, local;
    socklen_t alen = sizeof addr;
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listen_fd, 8) < 0 ||
        getsockname(listen_fd, (struct sockaddr *)&addr, &alen) < 0)
        fail("listening on 127.0.0.1 (is lo up?)");

    pthread_t th;
    pthread_create(&th, NULL, server, sctx);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
        fail("connect");
    alen = sizeof local;
    getsockname(fd, (struct sockaddr *)&local, &alen);
    SSL *ssl = SSL_new(cctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1)
        fail("SSL_connect");
    if (SSL_write(ssl, message, size) != size)
        fail("SSL_write");
    char reply[32] = {0}, want[32];
    int wl = snprintf(want, sizeof want, "ACK %d", size);
    if (read_full(ssl, reply, wl) < 0 || memcmp(reply, want, wl) != 0)
        fail("reading the server's answer");
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
    pthread_join(th, NULL);
    if (server_failed)
        fail("server side");
    printf("tls_selftest: OK pid=%d server_port=%d client_port=%d bytes=%d (%s)\n", (int)getpid(),
           ntohs(addr.sin_port), ntohs(local.sin_port), size, OpenSSL_version(OPENSSL_VERSION));
    return 0;
}
