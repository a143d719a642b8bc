"""A TLS client for ecapture's end-to-end tests, on Python's ssl module
(which calls OpenSSL's SSL_write_ex/SSL_read_ex). It PUTs a body to
tests/tls_server.py on 127.0.0.1:PORT:

    tls_client.py PORT FILE          the body is FILE, sent in ONE write
    tls_client.py PORT COUNT SIZE    the body is COUNT writes of SIZE bytes

sendall on a blocking socket hands the whole buffer to one SSL_write_ex.
Exits 0 once the server has confirmed the body length.
"""
import socket
import ssl
import sys

port = int(sys.argv[1])
if len(sys.argv) == 3:
    chunks = [open(sys.argv[2], "rb").read()]
else:
    count, size = int(sys.argv[2]), int(sys.argv[3])
    chunks = [(b"%08d " % i + b"x" * size)[:size] for i in range(count)]
total = sum(len(c) for c in chunks)

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with socket.create_connection(("127.0.0.1", port)) as s:
    with ctx.wrap_socket(s) as t:
        t.sendall(b"PUT /bulk HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % total)
        for c in chunks:
            t.sendall(c)
        reply = b""
        while not reply.endswith(b" body bytes"):
            more = t.recv(4096)
            if not more:
                break
            reply += more
        want = b", %d body bytes" % total
        if not reply.endswith(want):
            sys.exit("unexpected reply: %r" % reply[-200:])
