#!/usr/bin/env python3
"""A rexec raw-socket client written from docs/PROTOCOL.md alone.

usage: rexec_raw.py HOST:PORT KEY_FILE 'SHELL COMMAND'   (exit status as rexec's)
"""
import base64, hashlib, hmac, json, socket, struct, sys

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

def main(addr, key_file, command):
    line = next(l for l in open(key_file) if l.strip() and not l.startswith("#"))
    kid, secret = line.split()[0], base64.b64decode(line.split()[1])
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=30)
    hello = read_exact(s, 33)
    assert hello[0] == 1, "unknown protocol version"
    mac = hmac.new(secret, b"rexec-raw-v1\n" + hello[1:] + kid.encode(), hashlib.sha256).digest()
    s.sendall(bytes([len(kid)]) + kid.encode() + mac)
    if read_exact(s, 1) != b"\x00":
        sys.exit("rexec_raw.py: handshake refused")
    send_frame(s, 0x01, json.dumps({"shell": command}).encode())
    while True:
        t, p = read_frame(s)
        if t in (0x11, 0x12):  # stdout, stderr: 8-byte seq, then data
            out = sys.stdout if t == 0x11 else sys.stderr
            out.buffer.write(p[8:]); out.flush()
        elif t == 0x13:  # exit: at least 39 bytes; byte 39, when there, is the signal rexec sent
            code, sig = struct.unpack(">iB", p[:5])
            sent = p[39] if len(p) > 39 else 0
            return 128 + sent if sent else 128 + sig if sig else code
        elif t == 0x7F:
            sys.exit("rexec_raw.py: server error %d: %s" % (p[0], p[1:].decode()))

if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
