#!/usr/bin/env python3
"""A loopback SMTP sink for Pivota's tests and `make run`.

Standard library only (Debian's python3, asyncio streams).  It speaks
just enough SMTP for a client like libcurl: EHLO/HELO, MAIL FROM,
RCPT TO, DATA, RSET, NOOP, QUIT (no STARTTLS, no AUTH: it only ever
listens on 127.0.0.1).  Each message that ends with "." is stored in
the directory as one file, NNNNNN-<unix ms>.eml, exactly the bytes
received (dot-stuffing undone) after a small envelope header:

    X-Sink-Mail-From: <sender>
    X-Sink-Rcpt-To: <recipient>      (one line per recipient)

A message the client abandons before its final "." is not stored.

The directory is the whole control channel:

    <dir>/.stall    while this file exists, the sink holds each DATA
                    command before answering 354 and creates
                    <dir>/.stalled, so a test can kill the client in
                    the middle of a send
    <dir>/.refuse   if it exists, its content (e.g. "550 no such
                    user") answers every RCPT TO

Usage: smtp_sink.py DIR [--port N]   (N = 0: an ephemeral port)
It prints "port N" on its first line of output once it is listening,
and exits when its parent process dies (stdin is not used).
"""
import asyncio
import os
import sys
import time

SEQ = [0]


def store(directory, mail_from, rcpts, data):
    SEQ[0] += 1
    name = "%06d-%d-%d.eml" % (SEQ[0], int(time.time() * 1000), os.getpid())
    tmp = os.path.join(directory, "." + name + ".tmp")
    head = "X-Sink-Mail-From: %s\r\n" % mail_from
    head += "".join("X-Sink-Rcpt-To: %s\r\n" % r for r in rcpts)
    with open(tmp, "wb") as f:
        f.write(head.encode() + data)
    os.rename(tmp, os.path.join(directory, name))


async def session(directory, reader, writer):
    async def say(line):
        writer.write(line.encode() + b"\r\n")
        await writer.drain()

    mail_from, rcpts = None, []
    await say("220 pivota-sink ESMTP")
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            cmd = line.decode("utf-8", "replace").strip()
            verb = cmd[:4].upper()
            if verb in ("EHLO", "HELO"):
                if verb == "EHLO":
                    await say("250-pivota-sink")
                    await say("250-8BITMIME")
                    await say("250 SIZE 10485760")
                else:
                    await say("250 pivota-sink")
            elif cmd.upper().startswith("MAIL FROM:"):
                mail_from, rcpts = cmd[10:].strip().split(" ")[0], []
                await say("250 OK")
            elif cmd.upper().startswith("RCPT TO:"):
                refuse = os.path.join(directory, ".refuse")
                if os.path.exists(refuse):
                    with open(refuse) as f:
                        await say(f.read().strip() or "550 refused")
                    continue
                if mail_from is None:
                    await say("503 MAIL first")
                    continue
                rcpts.append(cmd[8:].strip())
                await say("250 OK")
            elif verb == "DATA":
                if not rcpts:
                    await say("503 RCPT first")
                    continue
                stall = os.path.join(directory, ".stall")
                if os.path.exists(stall):
                    open(os.path.join(directory, ".stalled"), "w").close()
                    while os.path.exists(stall):
                        await asyncio.sleep(0.05)
                await say("354 End data with <CR><LF>.<CR><LF>")
                data = bytearray()
                while True:
                    chunk = await reader.readline()
                    if not chunk:
                        return  # abandoned: nothing stored
                    if chunk in (b".\r\n", b".\n"):
                        break
                    if chunk.startswith(b"."):
                        chunk = chunk[1:]
                    data += chunk
                store(directory, mail_from, rcpts, bytes(data))
                mail_from, rcpts = None, []
                await say("250 OK queued")
            elif verb == "RSET":
                mail_from, rcpts = None, []
                await say("250 OK")
            elif verb == "NOOP":
                await say("250 OK")
            elif verb == "QUIT":
                await say("221 Bye")
                return
            else:
                await say("502 Command not implemented")
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


async def watch_parent(ppid):
    while os.getppid() == ppid:
        await asyncio.sleep(0.5)
    os._exit(0)


async def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        sys.exit("usage: smtp_sink.py DIR [--port N]")
    directory, port = args[0], 0
    if len(args) == 3 and args[1] == "--port":
        port = int(args[2])
    os.makedirs(directory, exist_ok=True)
    server = await asyncio.start_server(
        lambda r, w: session(directory, r, w), "127.0.0.1", port)
    print("port %d" % server.sockets[0].getsockname()[1], flush=True)
    asyncio.ensure_future(watch_parent(os.getppid()))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
