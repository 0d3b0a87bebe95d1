"""rexec's per-call token and key file, as README's "Keys and the token" says.

    kid, secret = load_key(path)            # the key file's first key, or key_id's
    value = mint(kid, secret, "/rexec.v1.ExecService/Run", "127.0.0.1:50051")
    # send value as the call's `authorization` metadata; one token per call

Only the standard library: the token is HMAC-SHA256 over a few lines of text.
"""
import base64
import hashlib
import hmac
import os
import stat
import time

SCHEME = "rexec-hmac-sha256"


def _b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def mint(kid, secret, method, authority, ts=None, nonce=None):
    """Returns the authorization value for one call of method (the gRPC path,
    "/rexec.v1.ExecService/Run") to authority (the HOST:PORT dialed).

    The token format lives in this one function. Format v2 signs the method
    and the authority, which must be the call's :authority header (grpcio
    sends the target string, HOST:PORT): the server accepts a token only for
    itself. ts (Unix seconds) and nonce (16 bytes) are for test vectors: by
    default, now and fresh random bytes.
    """
    if ts is None:
        ts = int(time.time())
    if nonce is None:
        nonce = os.urandom(16)
    nonce_b64 = _b64url(nonce)
    msg = "rexec-v2\n%s\n%d\n%s\n%s\n%s" % (kid, ts, nonce_b64, method, authority)
    sig = _b64url(hmac.new(secret, msg.encode(), hashlib.sha256).digest())
    return "%s v2;kid=%s;ts=%d;nonce=%s;sig=%s" % (SCHEME, kid, ts, nonce_b64, sig)


class KeyFileError(Exception):
    """A key file that cannot be used; the message says what to fix."""


def default_key_file():
    """$REXEC_KEY_FILE, else $XDG_CONFIG_HOME/rexec/keys or ~/.config/rexec/keys."""
    if os.environ.get("REXEC_KEY_FILE"):
        return os.environ["REXEC_KEY_FILE"]
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "rexec", "keys")


def load_key(path, key_id=None):
    """Returns (kid, secret) of the key file's first key, or of key_id.

    A line is `KEY_ID BASE64_SECRET [SCOPE,...] ...`; blank lines and `#`
    comments are skipped, and what follows the secret is the server's business.
    A file that group or others can read is refused, as rexec refuses it.
    """
    try:
        st = os.stat(path)
        with open(path, encoding="utf-8") as f:
            text = f.read(1 << 20)
    except OSError as e:
        raise KeyFileError("key file %s: %s (--key-file, $REXEC_KEY_FILE)" % (path, e.strerror)) from None
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise KeyFileError("key file %s is open to group or others (mode %04o): run `chmod 600 %s`"
                        % (path, stat.S_IMODE(st.st_mode), path))
    for n, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) < 2:
            raise KeyFileError("key file %s: line %d: want KEY_ID BASE64_SECRET [SCOPE,...]" % (path, n))
        if key_id is not None and fields[0] != key_id:
            continue
        try:
            secret = base64.b64decode(fields[1], validate=True)
        except ValueError:
            raise KeyFileError("key file %s: line %d (key %r): secret is not standard base64"
                            % (path, n, fields[0])) from None
        return fields[0], secret
    if key_id is not None:
        raise KeyFileError("key file %s has no key %r (--key-id)" % (path, key_id))
    raise KeyFileError("key file %s has no keys" % path)
