"""A hostile TLS client for ecapture's end-to-end tests (tests/hostile.rs),
on Python's ssl module (OpenSSL's SSL_write_ex/SSL_read_ex), talking to
tests/hostile_server.py on 127.0.0.1:PORT:

    hostile_client.py PORT CLASS

writes the crafted stream of CLASS (hpack, inflaters, gzipbomb, slowhead,
churn, hold1, hold2, termescape, normal), then sends one normal request on a
new connection:

    PUT /after HTTP/1.1 with a 4000-byte body (the tests' `pattern`), in one
    write, and checks the server's reply ("hello from /after, 4000 body bytes")

and prints "SENT <plaintext bytes written> <SSL_write calls>" (the crafted
stream and the normal request together; reads are not counted). Streams of
the `hold` classes stay open until the normal request is answered. Exits 0
when everything was written and the normal request answered. For
measurements by hand: HOLD_CONNS, HOLD_MIB (32 connections of 4 MiB) and
SLOWHEAD_KB (64) change the sizes; CHURN_PAIRS, CHURN_ROUNDS (3000, 4).
"""
import gzip
import os
import socket
import ssl
import sys

port = int(sys.argv[1])
cls = sys.argv[2]

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

sent = [0, 0]  # bytes, writes


def connect():
    s = socket.create_connection(("127.0.0.1", port))
    return ctx.wrap_socket(s)


def write(t, data):
    """One SSL_write (sendall on a blocking socket: one SSL_write_ex)."""
    t.sendall(data)
    sent[0] += len(data)
    sent[1] += 1


def pattern(n):
    """tests/util's `pattern`: printable, position-dependent bytes."""
    out, i = [], 0
    total = 0
    while total < n:
        line = b"%08d the quick brown fox jumps over the lazy dog\n" % i
        out.append(line)
        total += len(line)
        i += 1
    return b"".join(out)[:n]


# --- HTTP/2 and HPACK (RFC 7540, RFC 7541), just what the streams need ---

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, SETTINGS, GOAWAY, CONTINUATION = 0, 1, 4, 7, 9
END_STREAM, END_HEADERS = 0x1, 0x4


def frame(kind, flags, stream, payload, length=None):
    n = len(payload) if length is None else length
    return n.to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def hint(value, prefix_bits, first=0):
    """An HPACK integer with an N-bit prefix; `first` holds the pattern bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hstr(s):
    return hint(len(s), 7) + s


def indexed(i):
    return hint(i, 7, 0x80)


def literal_indexed(name, value):
    """Literal with incremental indexing, new name: enters the dynamic table."""
    return b"\x40" + hstr(name) + hstr(value)


def literal(name, value):
    """Literal without indexing, new name."""
    return b"\x00" + hstr(name) + hstr(value)


def literal_named(index, value):
    """Literal without indexing, name from the table."""
    return hint(index, 4) + hstr(value)


def table_size(n):
    return hint(n, 5, 0x20)


# :method POST (3), :scheme https (7), :path / (4), then content-encoding (26).
POST_HEAD = indexed(3) + indexed(7) + indexed(4) + literal_named(1, b"localhost")


def header_block(stream, block, end_stream=False, max_frame=16384):
    """HEADERS then CONTINUATION frames carrying `block`."""
    parts = [block[i:i + max_frame] for i in range(0, len(block), max_frame)] or [b""]
    out = []
    for i, p in enumerate(parts):
        flags = END_HEADERS if i == len(parts) - 1 else 0
        if i == 0:
            out.append(frame(HEADERS, flags | (END_STREAM if end_stream else 0), stream, p))
        else:
            out.append(frame(CONTINUATION, flags, stream, p))
    return b"".join(out)


def h2_connect():
    t = connect()
    write(t, PREFACE + frame(SETTINGS, 0, 0, b""))
    return t


# --- the classes ---

def hpack():
    """HPACK amplification: one-byte references to a 4 KB table entry (64 MB
    decoded per 16 KB block without a cap), huge literal header lists, and
    table size updates to 1 MiB although SETTINGS allowed 4 KiB."""
    t = h2_connect()
    stream = 1
    big = literal_indexed(b"x-big", b"A" * 4000)
    for _ in range(24):
        block = big + indexed(62) * 16000
        write(t, header_block(stream, block, end_stream=True))
        stream += 2
    for _ in range(8):
        block = b"".join(literal(b"x-list-%d" % i, b"L" * 8000) for i in range(16))
        write(t, header_block(stream, block, end_stream=True))
        stream += 2
    for _ in range(8):
        block = table_size(1 << 20) + literal_indexed(b"x-huge", b"H" * 60000) + indexed(62) * 4000
        write(t, header_block(stream, block, end_stream=True))
        stream += 2
    return [t]


def gzip_start():
    """The first bytes of a gzip body: enough to start an inflater (header
    and a deflate block of its own), never ending."""
    gz = gzip.compress(os.urandom(2048) * 8, 9)
    return gz[:40]


def inflaters():
    """Many HTTP/2 streams, each opening a gzip body and never ending it."""
    t = h2_connect()
    head = POST_HEAD + literal_named(26, b"gzip")
    start = gzip_start()
    stream, batch = 1, []
    for i in range(8000):
        batch.append(header_block(stream, head) + frame(DATA, 0, stream, start))
        stream += 2
        if len(batch) == 100:
            write(t, b"".join(batch))
            batch = []
    if batch:
        write(t, b"".join(batch))
    return [t]


def gzipbomb():
    """gzip bodies of 16 MiB of zeros (16 KB each), whose decompressed form
    would be hex-dumped: HTTP/1 requests, then HTTP/2 streams in one write."""
    bomb = gzip.compress(bytes(16 << 20), 9)
    t = connect()
    for i in range(8):
        write(t, b"POST /bomb/%d HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n"
                 b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (i, len(bomb), bomb))
    replies = b""
    while replies.count(b"body bytes") < 8:
        more = t.recv(65536)
        if not more:
            sys.exit("the server closed before answering every bomb")
        replies += more
    t2 = h2_connect()
    head = POST_HEAD + literal_named(26, b"gzip")
    out = []
    for i in range(8):
        s = 2 * i + 1
        out.append(header_block(s, head))
        for j in range(0, len(bomb), 16384):
            last = j + 16384 >= len(bomb)
            out.append(frame(DATA, END_STREAM if last else 0, s, bomb[j:j + 16384]))
    write(t2, b"".join(out))
    return [t, t2]


def slowhead():
    """An HTTP/1 head of SLOWHEAD_KB KB (default 64), one byte per SSL_write."""
    t = connect()
    lines = [b"GET /slow HTTP/1.1\r\n", b"Host: localhost\r\n"]
    size = sum(len(x) for x in lines)
    i = 0
    while size < int(os.environ.get("SLOWHEAD_KB", "64")) * 1024 - 64:
        line = b"X-Pad-%05d: %s\r\n" % (i, b"p" * 40)
        lines.append(line)
        size += len(line)
        i += 1
    head = b"".join(lines) + b"\r\n"
    for b in head:
        write(t, bytes([b]))
    reply = b""
    while b"body bytes" not in reply:
        more = t.recv(65536)
        if not more:
            sys.exit("the server closed before answering the slow head")
        reply += more
    return [t]


def churn():
    """Many connections, far beyond ecapture's cap (ECAPTURE_MAX_CONNS): TLS
    client/server pairs in memory (no sockets), each side writing in turn,
    round after round, so that every write comes from the least recently
    active connection (an eviction each). Both sides are this process."""
    pairs = int(os.environ.get("CHURN_PAIRS", "3000"))
    rounds = int(os.environ.get("CHURN_ROUNDS", "4"))
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(os.environ["CHURN_CERT"], os.environ["CHURN_KEY"])
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    # TLS 1.2 with session resumption: no public-key work after the first.
    cctx.maximum_version = ssl.TLSVersion.TLSv1_2
    keep, session = [], None
    for _ in range(pairs):
        c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
        cl = cctx.wrap_bio(c_in, c_out, session=session)
        sv = sctx.wrap_bio(s_in, s_out, server_side=True)
        for _ in range(16):
            done = 0
            for side, out, peer_in in ((cl, c_out, s_in), (sv, s_out, c_in)):
                try:
                    side.do_handshake()
                    done += 1
                except ssl.SSLWantReadError:
                    pass
                data = out.read()
                if data:
                    peer_in.write(data)
            if done == 2:
                break
        else:
            sys.exit("in-memory handshake did not finish")
        session = session or cl.session
        keep.append((cl, sv, c_in, c_out, s_in, s_out))
    for r in range(rounds):
        for i, (cl, sv, c_in, c_out, s_in, s_out) in enumerate(keep):
            for side, out in ((cl, c_out), (sv, s_out)):
                msg = b"churn %d %d\n" % (r, i)
                side.write(msg)
                sent[0] += len(msg)
                sent[1] += 1
                out.read()  # the record goes nowhere
    return [keep]


# Connections and MiB per connection of the hold classes.
HOLD_CONNS = int(os.environ.get("HOLD_CONNS", "32"))
HOLD_MIB = int(os.environ.get("HOLD_MIB", "4"))


def hold1():
    """HTTP/1 requests announcing a 1 GiB body on many connections (32),
    each sending 4 MiB of it (the most a message could hold before the
    budget) and never finishing (round robin: all at once)."""
    conns = [connect() for _ in range(HOLD_CONNS)]
    for t in conns:
        write(t, b"POST /hold HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n" % (1 << 30))
    chunk = pattern(65536)
    for _ in range(HOLD_MIB * 16):
        for t in conns:
            write(t, chunk)
    return conns


def hold2():
    """HTTP/2 DATA frames claiming 16 MiB on many connections (32), each
    sending 4 MiB of its frame and never finishing it."""
    conns = [h2_connect() for _ in range(HOLD_CONNS)]
    head = POST_HEAD + literal_named(31, b"application/octet-stream")
    for t in conns:
        write(t, header_block(1, head) + frame(DATA, 0, 1, b"", length=(1 << 24) - 1))
    chunk = pattern(65536)
    for _ in range(HOLD_MIB * 16):
        for t in conns:
            write(t, chunk)
    return conns


# Terminal controls in every field a traced process chooses: ESC (a CSI
# and an OSC sequence), BEL, U+202E (right-to-left override), U+009B (CSI).
EVIL = "\x1b[2J\x1b]0;pwned\x07\u202e\u009b".encode()


def termescape():
    # The process name as well (15 bytes at most): ESC, BEL, U+202E, U+009B.
    with open("/proc/self/comm", "wb") as f:
        f.write(b"\x1b[1m\x07" + "\u202e\u009b".encode() + b"evil")
    t = connect()
    body = b"payload " + EVIL + b"\n"
    write(t, b"POST /evil HTTP/1.1\r\nHost: localhost\r\nX-Evil: " + EVIL
             + b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    reply = b""
    while b"body bytes" not in reply:
        more = t.recv(65536)
        if not more:
            sys.exit("the server closed before answering")
        reply += more
    t2 = h2_connect()
    block = POST_HEAD + literal(b"x-evil", EVIL) + literal(b"x-" + EVIL, b"name")
    write(t2, header_block(1, block) + frame(DATA, END_STREAM, 1, b"data " + EVIL)
          + frame(GOAWAY, 0, 0, (1).to_bytes(4, "big") + (0).to_bytes(4, "big") + b"debug " + EVIL))
    return [t, t2]


def normal():
    return []


CLASSES = {
    "hpack": hpack, "inflaters": inflaters, "gzipbomb": gzipbomb, "slowhead": slowhead, "churn": churn,
    "hold1": hold1, "hold2": hold2, "termescape": termescape, "normal": normal,
}

held = CLASSES[cls]()

# The normal request, on a new connection, while the hostile ones are open.
body = pattern(4000)
t = connect()
write(t, b"PUT /after HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
reply = b""
while b"body bytes" not in reply:
    more = t.recv(65536)
    if not more:
        break
    reply += more
if b"hello from /after, 4000 body bytes" not in reply:
    sys.exit("unexpected reply to the normal request: %r" % reply[-200:])
t.close()
del held
print("SENT", sent[0], sent[1], flush=True)
