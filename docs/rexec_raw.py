#!/usr/bin/env python3
"""A rexec raw-socket client written from docs/PROTOCOL.md alone.

usage: rexec_raw.py [--timeout SECONDS] HOST:PORT KEY_FILE 'SHELL COMMAND'   (exit status as rexec's)
"""
import base64, hashlib, hmac, json, socket, struct, sys

USAGE = "usage: rexec_raw.py [--timeout SECONDS] HOST:PORT KEY_FILE 'SHELL COMMAND'"
CONNECT_TIMEOUT = 10  # seconds to connect and finish the handshake

def fail(msg):
    print("rexec_raw.py: " + msg, file=sys.stderr)
    sys.exit(255)  # rexec's own failure, as ssh uses 255

def read_exact(s, n):
    b = b""
    while len(b) < n:
        chunk = s.recv(n - len(b))
        if not chunk:
            raise ConnectionError("server closed the connection")
        b += chunk
    return b

def send_frame(s, ftype, payload=b""):
    s.sendall(struct.pack(">IB", 1 + len(payload), ftype) + payload)  # '>I', never 'i'

def read_frame(s):
    (n,) = struct.unpack(">I", read_exact(s, 4))
    body = read_exact(s, n)
    return body[0], body[1:]

def run(addr, key_file, command, timeout):
    line = next(l for l in open(key_file) if l.strip() and not l.startswith("#"))
    kid, secret = line.split()[0], base64.b64decode(line.split()[1])
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT)
    if read_exact(s, 1) != b"\x01":  # version; an HTTP/2 (gRPC) port sends 0x00 first
        fail("%s does not speak rexec's raw protocol version 1 (the gRPC port?)" % addr)
    hello = b"\x01" + read_exact(s, 32)  # version, then the challenge
    mac = hmac.new(secret, b"rexec-raw-v1\n" + hello[1:] + kid.encode(), hashlib.sha256).digest()
    s.sendall(bytes([len(kid)]) + kid.encode() + mac)
    if read_exact(s, 1) != b"\x00":
        fail("handshake refused")
    cmd = {"shell": command}
    if timeout:  # the server kills the command then; we wait a little longer
        cmd["timeout_ms"] = int(timeout * 1000)
    s.settimeout(timeout + CONNECT_TIMEOUT if timeout else None)
    send_frame(s, 0x01, json.dumps(cmd).encode())
    while True:
        t, p = read_frame(s)
        if t in (0x11, 0x12):  # stdout, stderr: 8-byte seq, then data
            out = sys.stdout if t == 0x11 else sys.stderr
            out.buffer.write(p[8:]); out.flush()
        elif t == 0x13:  # exit: at least 39 bytes; byte 39, when there, is the signal rexec sent
            code, sig, reason = struct.unpack(">iBB", p[:6])
            sent = p[39] if len(p) > 39 else 0
            if reason == 5:  # OOM; bytes 72..79, when there, are the memory limit
                limit = struct.unpack(">Q", p[72:80])[0] if len(p) >= 80 else 0
                sys.stderr.write("rexec: out of memory: the OOM killer ended the command at its limit of %d bytes\n" % limit)
            return 128 + sent if sent else 128 + sig if sig else code
        elif t == 0x7F:
            fail("server error %d: %s" % (p[0], p[1:].decode()))

def main(args):
    timeout = 0.0
    if args[:1] == ["--timeout"] and len(args) > 1:
        try:
            timeout = float(args[1])
        except ValueError:
            fail("--timeout %r: want a number of seconds (%s)" % (args[1], USAGE))
        args = args[2:]
    if len(args) != 3 or timeout < 0 or 0 < timeout < 0.001:
        fail(USAGE)
    try:
        return run(*args, timeout)
    except (OSError, ConnectionError) as e:  # socket.timeout is an OSError
        fail("%s: %s" % (args[0], e or "timed out"))

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
