// A rexec client in TypeScript: runs one command with ExecService.Run over the
// gRPC protocol (connect-node's createGrpcTransport, HTTP/2), streams its
// stdout and stderr as they arrive, and exits with its status as `rexec run -n`
// does (the command's own; 128+N when signal N killed it; 255 when rexec
// itself failed, with one line on stderr).
//
// The stubs in src/gen/ come from `buf generate` with protoc-gen-es
// (buf.gen.yaml beside package.json).

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { create } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { EndReason, ExecService, type Exited, RunRequestSchema } from "./gen/rexec/v1/exec_pb.js";
import { defaultKeyFile, type Key, KeyFileError, loadKey, mint } from "./token.js";

const prog = "client.js";
const usage = `usage: node ${prog} [--addr HOST:PORT] [--key-file F] [--key-id ID] [--timeout SECONDS]
                 [--connect-timeout SECONDS] [--tls-ca F [--tls-cert F --tls-key F]] -- CMD [ARG...]
One word runs through /bin/sh -c ('echo out; exit 7'); several are an exact argv.
  --addr             server HOST:PORT (default $REXEC_ADDR or 127.0.0.1:50051)
  --key-file         key file (default $REXEC_KEY_FILE or ~/.config/rexec/keys)
  --key-id           the key to use (default: the file's first)
  --timeout          the server kills the command after this many seconds (default: the server's maximum)
  --connect-timeout  give up when the command has not started after this long (default 10)
  --tls-ca           CA file: speak TLS and verify the server with it
  --tls-cert, --tls-key  a client certificate, for a server with --tls-client-ca
example: node ${prog} --addr 127.0.0.1:50051 -- 'echo out; echo err >&2; exit 7'`;

class Fatal extends Error {}

function seconds(flag: string, v: string | undefined, dflt: number): number {
  if (v === undefined) {
    return dflt;
  }
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n < 0) {
    throw new Fatal(`--${flag}: "${v}" is not a number of seconds`);
  }
  return n;
}

interface Args {
  addr: string;
  key: Key;
  timeout: number;
  connectTimeout: number;
  tls?: { ca: Buffer; cert?: Buffer; key?: Buffer };
  command: string[];
}

function parse(argv: string[]): Args {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        addr: { type: "string" },
        "key-file": { type: "string" },
        "key-id": { type: "string" },
        timeout: { type: "string" },
        "connect-timeout": { type: "string" },
        "tls-ca": { type: "string" },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    throw new Fatal(`${(e as Error).message} (see --help)`);
  }
  if (values.help) {
    process.stdout.write(usage + "\n");
    process.exit(0);
  }
  if (positionals.length === 0) {
    throw new Fatal("no command given: put it after -- (see --help)");
  }
  if ((values["tls-cert"] === undefined) !== (values["tls-key"] === undefined) || (values["tls-cert"] && !values["tls-ca"])) {
    throw new Fatal("--tls-cert and --tls-key go together, with --tls-ca");
  }
  let key: Key;
  try {
    key = loadKey(values["key-file"] ?? defaultKeyFile(), values["key-id"]);
  } catch (e) {
    throw e instanceof KeyFileError ? new Fatal(e.message) : e;
  }
  const read = (f: string | undefined) => {
    try {
      return f === undefined ? undefined : readFileSync(f);
    } catch (e) {
      throw new Fatal(`TLS file ${f}: ${(e as NodeJS.ErrnoException).code}`);
    }
  };
  const ca = read(values["tls-ca"]);
  return {
    addr: values.addr ?? (process.env.REXEC_ADDR || "127.0.0.1:50051"),
    key,
    timeout: seconds("timeout", values.timeout, 0),
    connectTimeout: seconds("connect-timeout", values["connect-timeout"], 10),
    tls: ca && { ca, cert: read(values["tls-cert"]), key: read(values["tls-key"]) },
    command: positionals,
  };
}

/** Signs every call with a fresh token for its method and its target. */
function auth(key: Key): Interceptor {
  return (next) => async (req) => {
    const url = new URL(req.url);
    req.header.set("authorization", mint(key, url.pathname, url.host));
    return next(req);
  };
}

/** The status a shell would report: the code, or 128+N for signal N. */
function exitStatus(ex: Exited): number {
  return ex.signalNumber ? 128 + ex.signalNumber : ex.exitCode;
}

function write(stream: NodeJS.WriteStream, data: Uint8Array | string): Promise<void> {
  return new Promise((resolve, reject) => stream.write(data, (err) => (err ? reject(err) : resolve())));
}

async function run(a: Args): Promise<number> {
  const transport = createGrpcTransport({
    baseUrl: `${a.tls ? "https" : "http"}://${a.addr}`,
    interceptors: [auth(a.key)],
    nodeOptions: a.tls,
  });
  const client = createClient(ExecService, transport);
  const req = create(RunRequestSchema, a.command.length === 1 ? { shell: a.command[0] } : { argv: a.command });
  if (a.timeout > 0) {
    req.timeout = create(DurationSchema, { seconds: BigInt(Math.floor(a.timeout)), nanos: Math.round((a.timeout % 1) * 1e9) });
  }

  // No answer (the Started event) within the connect timeout: give up.
  const abort = new AbortController();
  let why = "";
  const giveUp = setTimeout(() => {
    why = `cannot reach rexecd at ${a.addr} within ${a.connectTimeout}s: is it running? (--addr, $REXEC_ADDR)`;
    abort.abort();
  }, a.connectTimeout * 1000);
  // Ctrl-C cancels the call: the server kills the command's process group.
  process.once("SIGINT", () => {
    why = "interrupted";
    abort.abort();
  });
  try {
    for await (const resp of client.run(req, { signal: abort.signal })) {
      clearTimeout(giveUp);
      const ev = resp.event?.kind;
      if (ev?.case === "stdout" || ev?.case === "stderr") {
        await write(ev.case === "stdout" ? process.stdout : process.stderr, ev.value.data);
      } else if (ev?.case === "exited") {
        const ex = ev.value;
        if (ex.timedOut) {
          await write(process.stderr, `${prog}: the command's timeout passed; the server killed it\n`);
        } else if (ex.reason === EndReason.SHUTDOWN) {
          await write(process.stderr, `${prog}: the server shut down and killed the command\n`);
        }
        if (ex.droppedBytes) {
          await write(process.stderr, `${prog}: output budget reached: ${ex.droppedBytes} bytes dropped\n`);
        }
        return exitStatus(ex);
      }
    }
  } catch (e) {
    if (why === "interrupted") {
      return 130;
    }
    if (why) {
      throw new Fatal(why);
    }
    const err = ConnectError.from(e);
    if (err.code === Code.Unauthenticated || err.code === Code.PermissionDenied) {
      throw new Fatal(`auth failed for key "${a.key.id}" (${Code[err.code]}): ${err.rawMessage}`);
    }
    if (err.code === Code.Unavailable) {
      throw new Fatal(`cannot reach rexecd at ${a.addr} (${err.rawMessage}): is it running? (--addr, $REXEC_ADDR)`);
    }
    throw new Fatal(`${Code[err.code]}: ${err.rawMessage}`);
  } finally {
    clearTimeout(giveUp);
  }
  throw new Fatal("the stream ended without an exit status");
}

try {
  process.exit(await run(parse(process.argv.slice(2))));
} catch (e) {
  if (!(e instanceof Fatal)) {
    throw e;
  }
  await write(process.stderr, `${prog}: ${e.message}\n`);
  process.exit(255);
}
