"""A small TLS server for ecapture's end-to-end tests, on Python's ssl module
(which calls OpenSSL's SSL_read_ex/SSL_write_ex).

    tls_server.py HOST CERT KEY

Binds HOST on an ephemeral port and prints "READY <port>" once listening.
Each connection carries HTTP/1.1 requests (with an optional Content-Length
body), one after the other, until the client closes; each gets
"hello from <path>, N body bytes" back. tests/hostile_server.py uses its
`answer_requests`.
"""
import socket
import ssl
import sys
import threading


def answer_requests(t, data=b""):
    """HTTP/1.x requests on TLS socket `t` (`data`: bytes read already), one
    after the other: each head read whole however it is split, its
    Content-Length body read and discarded as it comes (never held), and
    each complete request answered. Returns when the client closes."""
    while True:
        while b"\r\n\r\n" not in data:
            chunk = t.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        got = min(len(data), length)
        data = data[got:]
        while got < length:
            chunk = t.recv(65536)
            if not chunk:
                return
            take = min(len(chunk), length - got)
            got += take
            data = chunk[take:]
        path = head.split(b" ")[1] if b" " in head else b"?"
        reply = b"hello from %s, %d body bytes" % (path, got)
        t.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(reply), reply))


def main():
    host, cert, key = sys.argv[1], sys.argv[2], sys.argv[3]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, 0))
    srv.listen(64)
    print("READY", srv.getsockname()[1], flush=True)

    def handle(conn):
        try:
            with ctx.wrap_socket(conn, server_side=True) as t:
                answer_requests(t)
        except (OSError, ssl.SSLError):
            pass

    while True:
        c, _ = srv.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
