"""A TLS client for ecapture's key log tests (tests/keylog.rs), on Python's
ssl module (OpenSSL's SSL_write_ex/SSL_read_ex), with OpenSSL's own key log
(SSL_CTX_set_keylog_callback, through keylog_filename) on:

    keylog_client.py PORT VERSION COUNT KEYLOG [CIPHER]

VERSION is 1.2 or 1.3; CIPHER an OpenSSL TLS 1.2 cipher list. COUNT
connections to tests/tls_server.py on 127.0.0.1:PORT, each sending
"GET /keylog/<version>/<i>" and reading the answer; every connection after
the first resumes the session of the one before (a TLS 1.2 ticket, a TLS 1.3
PSK). Prints "RESUMED n" with how many were resumed.
"""
import socket
import ssl
import sys

port, version, count, keylog = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.keylog_filename = keylog
if version == "1.2":
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if len(sys.argv) > 5:
        ctx.set_ciphers(sys.argv[5])
else:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
session, resumed = None, 0
for i in range(count):
    with socket.create_connection(("127.0.0.1", port)) as s:
        with ctx.wrap_socket(s, session=session) as t:
            t.sendall(b"GET /keylog/%s/%d HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n" % (version.encode(), i))
            answer = b""
            while b"hello from" not in answer:
                chunk = t.recv(4096)
                if not chunk:
                    break
                answer += chunk
            assert b"hello from /keylog/" in answer, answer
            resumed += t.session_reused
            session = t.session
print("RESUMED %d" % resumed)
