// rexec's per-call token and key file, as README's "Keys and the token" says.
//
//   const key = loadKey(path);                    // the file's first key, or keyId's
//   const value = mint(key, "/rexec.v1.ExecService/Run", "127.0.0.1:50051");
//   // send value as the call's `authorization` header; one token per call
//
// Only node:crypto: the token is HMAC-SHA256 over a few lines of text.

import { createHmac, randomBytes } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export const scheme = "rexec-hmac-sha256";

export interface Key {
  id: string;
  secret: Uint8Array;
}

/**
 * Returns the authorization value for one call of method (the gRPC path,
 * "/rexec.v1.ExecService/Run") to authority (the HOST:PORT dialed).
 *
 * The token format lives in this one function. Format v2 signs the method
 * and the authority, which must be the call's :authority header (the
 * HOST:PORT of the URL dialed): the server accepts a token only for itself.
 * ts (Unix seconds) and nonce (16 bytes) are for test vectors: by default,
 * now and fresh random bytes.
 */
export function mint(
  key: Key,
  method: string,
  authority: string,
  ts: number = Math.floor(Date.now() / 1000),
  nonce: Uint8Array = randomBytes(16),
): string {
  const nonceB64 = Buffer.from(nonce).toString("base64url");
  const msg = `rexec-v2\n${key.id}\n${ts}\n${nonceB64}\n${method}\n${authority}`;
  const sig = createHmac("sha256", key.secret).update(msg).digest("base64url");
  return `${scheme} v2;kid=${key.id};ts=${ts};nonce=${nonceB64};sig=${sig}`;
}

/** A key file that cannot be used; the message says what to fix. */
export class KeyFileError extends Error {}

/** $REXEC_KEY_FILE, else $XDG_CONFIG_HOME/rexec/keys or ~/.config/rexec/keys. */
export function defaultKeyFile(): string {
  if (process.env.REXEC_KEY_FILE) {
    return process.env.REXEC_KEY_FILE;
  }
  return join(process.env.XDG_CONFIG_HOME || join(homedir(), ".config"), "rexec", "keys");
}

/**
 * Returns the key file's first key, or keyId's. A line is
 * `KEY_ID BASE64_SECRET [SCOPE,...] ...`; blank lines and `#` comments are
 * skipped, and what follows the secret is the server's business. A file that
 * group or others can read is refused, as rexec refuses it.
 */
export function loadKey(path: string, keyId?: string): Key {
  let text: string;
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new KeyFileError(`key file ${path}: ${code} (--key-file, $REXEC_KEY_FILE)`);
  }
  if (mode & 0o077) {
    const m = mode.toString(8).padStart(4, "0");
    throw new KeyFileError(`key file ${path} is open to group or others (mode ${m}): run \`chmod 600 ${path}\``);
  }
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const f = lines[i].trim().split(/\s+/);
    if (f[0] === "" || f[0].startsWith("#")) {
      continue;
    }
    if (f.length < 2) {
      throw new KeyFileError(`key file ${path}: line ${i + 1}: want KEY_ID BASE64_SECRET [SCOPE,...]`);
    }
    if (keyId !== undefined && f[0] !== keyId) {
      continue;
    }
    const secret = Buffer.from(f[1], "base64");
    // Buffer.from skips what is not base64; insist on the standard spelling.
    if (secret.toString("base64") !== f[1]) {
      throw new KeyFileError(`key file ${path}: line ${i + 1} (key "${f[0]}"): secret is not standard base64`);
    }
    return { id: f[0], secret };
  }
  throw new KeyFileError(keyId !== undefined ? `key file ${path} has no key "${keyId}" (--key-id)` : `key file ${path} has no keys`);
}
