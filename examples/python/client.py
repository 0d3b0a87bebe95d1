#!/usr/bin/python3
"""A rexec client in Python: runs one command with ExecService.Run, streams its
stdout and stderr as they arrive, and exits with its status as `rexec run -n`
does (the command's own; 128+N when signal N killed it; 255 when rexec itself
failed, with one line on stderr).

usage: client.py [--addr HOST:PORT] [--key-file F] [--key-id ID] [--timeout SECONDS]
                 [--connect-timeout SECONDS] [--tls-ca F [--tls-cert F --tls-key F]] -- CMD [ARG...]

One word runs through /bin/sh -c ('echo out; exit 7'); several are an exact argv.
The stubs in gen/ come from `buf generate` (buf.gen.yaml beside this file) and
need Debian's python3-grpcio and python3-protobuf: run it with /usr/bin/python3.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen"))

import grpc  # noqa: E402  (after the path to gen/)
from google.protobuf import duration_pb2  # noqa: E402
from rexec.v1 import exec_pb2, exec_pb2_grpc  # noqa: E402

import rexec_token  # noqa: E402

RUN = "/rexec.v1.ExecService/Run"
PROG = "client.py"


class Usage(argparse.ArgumentParser):
    def error(self, message):
        # One line and 255, as rexec's own usage errors.
        sys.stderr.write("%s: %s (see --help)\n" % (PROG, message))
        sys.exit(255)


def die(msg):
    sys.stderr.write("%s: %s\n" % (PROG, msg))
    sys.exit(255)


def seconds(s):
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number of seconds" % s) from None
    if v < 0:
        raise argparse.ArgumentTypeError("%r is negative" % s)
    return v


def parse_args(argv):
    p = Usage(prog=PROG, description="Run one command on rexecd with ExecService.Run.",
              epilog="example: %s --addr 127.0.0.1:50051 -- 'echo out; echo err >&2; exit 7'" % PROG)
    p.add_argument("--addr", default=os.environ.get("REXEC_ADDR") or "127.0.0.1:50051",
                   help="server HOST:PORT (default $REXEC_ADDR or 127.0.0.1:50051)")
    p.add_argument("--key-file", default=None, help="key file (default $REXEC_KEY_FILE or ~/.config/rexec/keys)")
    p.add_argument("--key-id", default=None, help="the key to use (default: the file's first)")
    p.add_argument("--timeout", type=seconds, default=0,
                   help="the server kills the command after this many seconds (default: the server's maximum)")
    p.add_argument("--connect-timeout", type=seconds, default=10, help="give up reaching the server after this long (default 10)")
    p.add_argument("--tls-ca", help="CA file: speak TLS and verify the server with it")
    p.add_argument("--tls-cert", help="client certificate, for a server with --tls-client-ca")
    p.add_argument("--tls-key", help="the client certificate's key")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARG...]")
    a = p.parse_args(argv)
    if a.command[:1] == ["--"]:
        a.command = a.command[1:]
    if not a.command:
        p.error("no command given: put it after --")
    if (a.tls_cert is None) != (a.tls_key is None) or (a.tls_cert and not a.tls_ca):
        p.error("--tls-cert and --tls-key go together, with --tls-ca")
    return a


def channel(a):
    if not a.tls_ca:
        return grpc.insecure_channel(a.addr)
    try:
        files = [open(f, "rb").read() if f else None for f in (a.tls_ca, a.tls_key, a.tls_cert)]
    except OSError as e:
        die("TLS file %s: %s" % (e.filename, e.strerror))
    return grpc.secure_channel(a.addr, grpc.ssl_channel_credentials(*files))


def exit_status(ex):
    """The status a shell would report: the code, or 128+N for signal N."""
    if ex.signal_number:
        return 128 + ex.signal_number
    return ex.exit_code


def run(a):
    try:
        kid, secret = rexec_token.load_key(a.key_file or rexec_token.default_key_file(), a.key_id)
    except rexec_token.KeyFileError as e:
        die(str(e))
    req = exec_pb2.RunRequest()
    if len(a.command) == 1:
        req.shell = a.command[0]
    else:
        req.argv.extend(a.command)
    if a.timeout:
        req.timeout.CopyFrom(duration_pb2.Duration(seconds=int(a.timeout), nanos=int(a.timeout % 1 * 1e9)))

    with channel(a) as ch:
        try:
            grpc.channel_ready_future(ch).result(timeout=a.connect_timeout)
        except grpc.FutureTimeoutError:
            die("cannot reach rexecd at %s within %gs: is it running? (--addr, $REXEC_ADDR)" % (a.addr, a.connect_timeout))
        # One fresh token per call, for this method and this target.
        md = [("authorization", rexec_token.mint(kid, secret, RUN, a.addr))]
        call = exec_pb2_grpc.ExecServiceStub(ch).Run(req, metadata=md)
        try:
            for resp in call:
                ev = resp.event
                kind = ev.WhichOneof("kind")
                if kind in ("stdout", "stderr"):
                    out = sys.stdout.buffer if kind == "stdout" else sys.stderr.buffer
                    out.write(getattr(ev, kind).data)
                    out.flush()
                elif kind == "exited":
                    ex = ev.exited
                    if ex.timed_out:
                        sys.stderr.write("%s: the command's timeout passed; the server killed it\n" % PROG)
                    elif ex.reason == exec_pb2.END_REASON_SHUTDOWN:
                        sys.stderr.write("%s: the server shut down and killed the command\n" % PROG)
                    if ex.dropped_bytes:
                        sys.stderr.write("%s: output budget reached: %d bytes dropped\n" % (PROG, ex.dropped_bytes))
                    return exit_status(ex)
        except grpc.RpcError as e:
            if e.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                die("auth failed for key %r (%s): %s" % (kid, e.code().name, e.details()))
            die("%s: %s" % (e.code().name, e.details()))
        except KeyboardInterrupt:
            call.cancel()  # the server kills the command's process group
            return 130
    die("the stream ended without an exit status")


if __name__ == "__main__":
    sys.exit(run(parse_args(sys.argv[1:])))
