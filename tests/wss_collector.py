"""A wss:// collector for tests/wss.rs (Python `websockets` over `ssl`).

    wss_collector.py PORT CERT KEY

Prints, one line each, flushed: `READY` once listening, `MSG <text>` per text
message, `CLOSE <code>` when a connection ends (1000: the client sent a Close
frame; 1006: it vanished without one), `TLSERR <reason>` for a failed
handshake.
"""
import asyncio
import ssl
import sys

import websockets


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def handler(ws, *_path):
    try:
        async for msg in ws:
            if isinstance(msg, str):
                say("MSG " + msg)
            else:
                say("BINARY %d" % len(msg))
    except websockets.ConnectionClosed:
        pass
    say("CLOSE %s" % ws.close_code)


async def main():
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    async with websockets.serve(handler, "127.0.0.1", port, ssl=ctx):
        say("READY")
        await asyncio.Future()


asyncio.run(main())
