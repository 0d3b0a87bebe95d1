// The TypeScript minter against README's test vector, and the key file reader.
//   npm run build && npm test

import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import { KeyFileError, loadKey, mint } from "./token.js";

// README, "Keys and the token": the test vector, checked by Go's
// interceptors/token_test.go too.
const vectorSecretB64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const vectorToken =
  "rexec-hmac-sha256 v2;kid=ops;ts=1767225600;nonce=oKGio6SlpqeoqaqrrK2urw;" +
  "sig=TspnLXu0GJslrqDLZ0j0crnDRODLLNv3aQD4SmDAw_k";
const range = (from: number, n: number) => Uint8Array.from({ length: n }, (_, i) => from + i);
const vectorKey = { id: "ops", secret: range(0, 32) };

test("README's test vector", () => {
  assert.equal(mint(vectorKey, "/rexec.v1.ExecService/Run", "127.0.0.1:50051", 1767225600, range(0xa0, 16)), vectorToken);
});

test("another method signs differently", () => {
  const got = mint(vectorKey, "/rexec.v1.ExecService/Session", "127.0.0.1:50051", 1767225600, range(0xa0, 16));
  assert.notEqual(got.split(";sig=")[1], vectorToken.split(";sig=")[1]);
});

test("another authority signs differently", () => {
  const got = mint(vectorKey, "/rexec.v1.ExecService/Run", "127.0.0.2:50051", 1767225600, range(0xa0, 16));
  assert.notEqual(got.split(";sig=")[1], vectorToken.split(";sig=")[1]);
});

test("a fresh nonce per token", () => {
  const a = mint(vectorKey, "/m", "h:1");
  assert.notEqual(a, mint(vectorKey, "/m", "h:1"));
  assert.match(a, /^rexec-hmac-sha256 v2;kid=ops;ts=[1-9][0-9]*;nonce=[A-Za-z0-9_-]{22};sig=[A-Za-z0-9_-]{43}$/);
});

test("key file: the first key, or the one named", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "rexec-ts-"));
  t.after(() => rmSync(dir, { recursive: true }));
  const write = (text: string, mode = 0o600) => {
    const p = join(dir, `keys${Math.random()}`);
    writeFileSync(p, text);
    chmodSync(p, mode);
    return p;
  };
  const p = write(`# comment\n\nops ${vectorSecretB64} exec\nload ${vectorSecretB64} echo,replay user=x\n`);
  assert.deepEqual(loadKey(p), { id: "ops", secret: Buffer.from(range(0, 32)) });
  assert.equal(loadKey(p, "load").id, "load");

  for (const [text, mode, want] of [
    [`ops ${vectorSecretB64}\n`, 0o644, /chmod 600/],
    ["ops not*base64\n", 0o600, /not standard base64/],
    ["ops\n", 0o600, /line 1/],
    ["# only a comment\n", 0o600, /no keys/],
  ] as const) {
    assert.throws(() => loadKey(write(text, mode)), (e: unknown) => e instanceof KeyFileError && want.test(e.message));
  }
  assert.throws(() => loadKey(write(`ops ${vectorSecretB64}\n`), "x"), /no key "x"/);
  assert.throws(() => loadKey(join(dir, "none")), /--key-file/);
});
