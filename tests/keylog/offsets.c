/*
 * Prints where OpenSSL keeps what ecapture's key log reads (struct
 * key_offsets of bpf/abi.h) and the fields the plaintext capture reads
 * (struct lib_offsets), computed by the compiler from OpenSSL's own internal
 * header ssl/ssl_local.h. tests/keylog/offsets.sh compiles it against the
 * source of each OpenSSL release line (the openssl-src crate) and writes the
 * table src/modules/openssl/keylog_offsets.txt.
 *
 * Offsets are relative to the pointer SSL_* functions receive: the SSL
 * object up to 3.1; from 3.2 on that pointer is an SSL_CONNECTION (which
 * starts with the SSL), so offsets are into SSL_CONNECTION.
 *
 * Output: one "name value" line per offset (decimal).
 */
#include <stddef.h>
#include <stdio.h>

#include "ssl/ssl_local.h"

#if OPENSSL_VERSION_NUMBER >= 0x30200000L
typedef SSL_CONNECTION CONN;
#else
typedef SSL CONN;
#endif

#define P(name, value) printf("%s %lu\n", name, (unsigned long)(value))

int main(void)
{
	P("ssl_version", offsetof(CONN, version));
	P("ssl_rbio", offsetof(CONN, rbio));
	P("ssl_wbio", offsetof(CONN, wbio));
	P("ssl_server", offsetof(CONN, server));
#if OPENSSL_VERSION_NUMBER < 0x30000000L
	/* 1.1.1: SSL3_STATE is behind a pointer. */
	P("ssl_s3", offsetof(CONN, s3));
	P("client_random", offsetof(SSL3_STATE, client_random));
	P("s3_is_pointer", 1);
#else
	P("ssl_s3", 0);
	P("client_random", offsetof(CONN, s3.client_random));
	P("s3_is_pointer", 0);
#endif
	P("ssl_session", offsetof(CONN, session));
	P("sess_master_key_length", offsetof(SSL_SESSION, master_key_length));
	P("sess_master_key", offsetof(SSL_SESSION, master_key));
	P("sess_cipher", offsetof(SSL_SESSION, cipher));
	P("cipher_id", offsetof(SSL_CIPHER, id));
	P("handshake_secret", offsetof(CONN, handshake_secret));
	P("handshake_traffic_hash", offsetof(CONN, handshake_traffic_hash));
	P("client_app_traffic_secret", offsetof(CONN, client_app_traffic_secret));
	P("server_app_traffic_secret", offsetof(CONN, server_app_traffic_secret));
	P("exporter_master_secret", offsetof(CONN, exporter_master_secret));
	P("secret_size", sizeof(((CONN *)0)->handshake_secret));
	return 0;
}
