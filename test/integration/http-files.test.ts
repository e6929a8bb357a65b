// File bodies over real sockets to real clients, through both paths of src/http/files.ts:
// sendfile(2) via native/sendfile.c, and the portable two-buffer streamer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, writeFileSync, readdirSync, rmSync, truncateSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { streamFile, type StreamOptions } from '../../src/http/files.ts';
import { zeroCopyAvailable } from '../../src/http/zero-copy.ts';
import { native, nativeState } from '../../src/native.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'rackboot-files-'));
const data = randomBytes(5 * 1024 * 1024 + 4321); // odd size: the last piece is short
const file = join(dir, 'rand.img');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const openFds = () => readdirSync('/proc/self/fd').length;

interface Served {
  server: Server;
  url: string;
  done: Promise<unknown>[];
}
async function serve(opts: StreamOptions, path = file): Promise<Served> {
  const done: Promise<unknown>[] = [];
  const server = createServer((req, res) => {
    done.push(
      streamFile(req, res, path, opts).then(
        () => 'ok',
        (err: Error) => {
          res.destroy();
          return err;
        },
      ),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/f`, done };
}
async function curl(...args: string[]): Promise<Buffer> {
  const { stdout } = await run('curl', ['-sS', '--fail', ...args], { encoding: 'buffer', maxBuffer: 64 << 20 });
  return stdout;
}

before(() => writeFileSync(file, data));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the native addon is built and loaded (npm ci builds native/; without it images serve at about half speed)', async () => {
  assert.deepEqual(nativeState, { loaded: true });
  // RACKBOOT_NATIVE=off is honoured, and says why (rackboot doctor prints it)
  const off = await run(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      "import('./src/native.ts').then((m) => console.log(JSON.stringify(m.nativeState)))",
    ],
    { env: { ...process.env, RACKBOOT_NATIVE: 'off' } },
  );
  assert.deepEqual(JSON.parse(off.stdout as string), { loaded: false, reason: 'off', detail: 'RACKBOOT_NATIVE=off' });
  assert.equal(
    zeroCopyAvailable,
    true,
    'native/build/Release/rackboot.node did not load: run `npm run install` and read the node-gyp output',
  );
  // wrong arguments are JS errors, never a crash
  const n = native!;
  assert.throws(() => n.sendfileStart(-1, 0, 0, 1, () => {}), RangeError);
  assert.throws(() => (n.sendfileStart as (...a: unknown[]) => object)('x', 0, 0, 1, () => {}), /sendfile/);
  assert.throws(() => (n.sendfileCancel as (j: unknown) => void)({}), TypeError);
  assert.throws(() => (n.acceptPending as (...a: unknown[]) => number[])('x', 1), TypeError);
  const devNull = openSync('/dev/null', 'r');
  assert.deepEqual(n.acceptPending(devNull, 4), [], 'not a socket: nothing accepted');
  closeSync(devNull);
});

for (const zeroCopy of [true, false]) {
  const name = zeroCopy ? 'sendfile' : 'streamer';

  test(`${name}: whole file and ranges are byte-identical with curl; keep-alive reuses the connection`, async () => {
    const s = await serve({ zeroCopy });
    try {
      assert.equal(sha(await curl(s.url)), sha(data));
      for (const [from, to] of [
        [0, 0],
        [65535, 65536 * 3],
        [1 << 20, (2 << 20) + 17],
        [data.length - 70000, data.length - 1],
      ]) {
        const part = await curl('-r', `${from}-${to}`, s.url);
        assert.ok(part.equals(data.subarray(from, to + 1)), `range ${from}-${to}`);
      }
      assert.ok((await curl('-r', '-100000', s.url)).equals(data.subarray(data.length - 100000)), 'suffix range');
      // two downloads on one connection: the second response must start exactly where the first ended
      const { stderr, stdout } = await run('curl', ['-sv', s.url, '--next', '-s', '-r', '100-200000', s.url], {
        encoding: 'buffer',
        maxBuffer: 64 << 20,
      });
      assert.match(stderr.toString(), /Re-using existing connection/);
      assert.ok(stdout.equals(Buffer.concat([data, data.subarray(100, 200001)])));
      assert.deepEqual(
        await Promise.all(s.done),
        s.done.map(() => 'ok'),
      );
    } finally {
      s.server.close();
    }
  });

  test(`${name}: malformed, unsatisfiable and multiple ranges get the answers of RFC 9110, and the connection stays sound`, async () => {
    const s = await serve({ zeroCopy });
    try {
      const port = Number(new URL(s.url).port);
      const sock = connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      sock.on('data', (c: Buffer) => chunks.push(c));
      // One connection, four requests: a bad answer's framing would corrupt every later one.
      sock.write(
        ['bytes=abc', `bytes=${data.length + 10}-`, 'bytes=0-0,100-199', 'bytes=-0']
          .map((r) => `GET /f HTTP/1.1\r\nHost: x\r\nRange: ${r}\r\n\r\n`)
          .join('') + 'GET /f HTTP/1.1\r\nHost: x\r\nRange: bytes=5-9\r\nConnection: close\r\n\r\n',
      );
      await new Promise((r) => sock.on('close', r));
      let rest = Buffer.concat(chunks);
      const responses: { head: string; body: Buffer }[] = [];
      while (rest.length) {
        const end = rest.indexOf('\r\n\r\n');
        const head = rest.subarray(0, end).toString();
        const len = Number(/Content-Length: (\d+)/i.exec(head)![1]);
        responses.push({ head, body: rest.subarray(end + 4, end + 4 + len) });
        rest = rest.subarray(end + 4 + len);
      }
      assert.equal(responses.length, 5);
      assert.match(responses[0].head, /^HTTP\/1.1 200 /, 'a malformed Range is ignored: the whole file');
      assert.ok(responses[0].body.equals(data));
      assert.match(responses[1].head, /^HTTP\/1.1 416 .*Content-Range: bytes \*\/5247201/s);
      assert.match(responses[2].head, /^HTTP\/1.1 200 /, 'several ranges: the whole file');
      assert.ok(responses[2].body.equals(data));
      assert.match(responses[3].head, /^HTTP\/1.1 416 /, 'an empty suffix range cannot be satisfied');
      assert.match(responses[4].head, /^HTTP\/1.1 206 /);
      assert.ok(responses[4].body.equals(data.subarray(5, 10)));
      assert.deepEqual(
        await Promise.all(s.done),
        s.done.map(() => 'ok'),
      );
    } finally {
      s.server.close();
    }
  });

  test(`${name}: pipelined requests on one socket get whole, ordered responses`, async () => {
    const s = await serve({ zeroCopy });
    try {
      const port = Number(new URL(s.url).port);
      const sock = connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      sock.on('data', (c: Buffer) => chunks.push(c));
      sock.write(
        'GET /f HTTP/1.1\r\nHost: x\r\nRange: bytes=10-300009\r\n\r\nGET /f HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      );
      await new Promise((r) => sock.on('close', r));
      const all = Buffer.concat(chunks);
      const firstHeadEnd = all.indexOf('\r\n\r\n') + 4;
      assert.match(all.subarray(0, firstHeadEnd).toString(), /^HTTP\/1.1 206 .*Content-Length: 300000\r\n/s);
      const firstBody = all.subarray(firstHeadEnd, firstHeadEnd + 300000);
      assert.ok(firstBody.equals(data.subarray(10, 300010)));
      const rest = all.subarray(firstHeadEnd + 300000);
      const secondHeadEnd = rest.indexOf('\r\n\r\n') + 4;
      assert.match(rest.subarray(0, secondHeadEnd).toString(), /^HTTP\/1.1 200 .*Content-Length: 5247201\r\n/s);
      assert.ok(rest.subarray(secondHeadEnd).equals(data));
    } finally {
      s.server.close();
    }
  });

  test(`${name}: 16 parallel downloads, then clients that leave mid-file free every descriptor`, async () => {
    const s = await serve({ zeroCopy });
    try {
      const hashes = await Promise.all(Array.from({ length: 16 }, () => curl(s.url).then(sha)));
      assert.deepEqual(new Set(hashes), new Set([sha(data)]));
      const baseline = openFds();
      await Promise.all(
        Array.from({ length: 8 }, () =>
          run('curl', ['-s', '--limit-rate', '2M', '--max-time', '0.5', '-o', '/dev/null', s.url]).catch(
            (e: { code: number }) => e.code,
          ),
        ),
      );
      const results = await Promise.all(s.done);
      assert.equal(results.filter((r) => r !== 'ok').length, 0, 'a client leaving is routine, not an error');
      for (let i = 0; i < 100 && openFds() > baseline; i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(openFds() <= baseline, `descriptors leaked: ${openFds()} open, ${baseline} before`);
      assert.equal(sha(await curl(s.url)), sha(data), 'still serving');
    } finally {
      s.server.close();
    }
  });
}

test('sendfile: ranges beyond 4 GiB of a sparse 5 GiB file (64-bit offsets through the addon)', async () => {
  const { writeSync } = await import('node:fs');
  const huge = join(dir, 'huge.img');
  const at = 4.5 * 1024 ** 3;
  const marker = randomBytes(200_000);
  const fd = openSync(huge, 'w');
  writeSync(fd, marker, 0, marker.length, at);
  closeSync(fd);
  truncateSync(huge, 5 * 1024 ** 3);
  const s = await serve({ zeroCopy: true }, huge);
  try {
    const got = await curl('-r', `${at}-${at + marker.length - 1}`, s.url);
    assert.ok(got.equals(marker));
    assert.deepEqual(await Promise.all(s.done), ['ok']);
  } finally {
    s.server.close();
    rmSync(huge);
  }
});

for (const zeroCopy of [true, false])
  test(`${zeroCopy ? 'sendfile' : 'streamer'}: a client that stops reading is cut off after the stall time, not held forever`, async () => {
    const big = join(dir, 'big.img');
    writeFileSync(big, Buffer.alloc(0));
    truncateSync(big, 256 * 1024 * 1024); // far more than socket buffers hold
    const s = await serve({ zeroCopy, stallMs: 300 }, big);
    try {
      const sock = connect(Number(new URL(s.url).port), '127.0.0.1');
      sock.write('GET /f HTTP/1.1\r\nHost: x\r\n\r\n');
      sock.pause(); // reads nothing: the server's socket buffer fills and stays full
      while (s.done.length === 0) await new Promise((r) => setTimeout(r, 10));
      const outcome = await Promise.race([s.done[0], new Promise((r) => setTimeout(() => r('still holding'), 5000))]);
      assert.ok(outcome instanceof Error, `expected the transfer to be cut off, got ${String(outcome)}`);
      assert.match(outcome.message, /no progress for 300 ms/);
      sock.destroy();
    } finally {
      s.server.close();
      rmSync(big);
    }
  });

for (const zeroCopy of [true, false])
  test(`${zeroCopy ? 'sendfile' : 'streamer'}: a file that shrinks under a download ends the connection short instead of hanging`, async () => {
    const shrinking = join(dir, 'shrink.img');
    const big = randomBytes(32 << 20); // far more than loopback socket buffers hold: the server is mid-file when it shrinks
    writeFileSync(shrinking, big);
    const s = await serve({ zeroCopy }, shrinking);
    s.server.keepAliveTimeout = 60_000; // an idle keep-alive close must not pass for the short-body close
    try {
      const sock = connect(Number(new URL(s.url).port), '127.0.0.1');
      let received = 0;
      sock.on('data', (c: Buffer) => {
        received += c.length;
        if (received > 100_000 && received - c.length <= 100_000) {
          truncateSync(shrinking, 200_000);
        }
      });
      sock.write('GET /f HTTP/1.1\r\nHost: x\r\n\r\n');
      const closedEarly = await Promise.race([
        new Promise((r) => sock.on('close', () => r(true))),
        new Promise((r) => setTimeout(() => r(false), 10_000)),
      ]);
      assert.equal(closedEarly, true, 'the server must close a connection whose body came up short');
      assert.ok(received < big.length);
      const outcome = await s.done[0];
      assert.ok(outcome instanceof Error, 'a file that shrank is reported (the log says file transfer cut off)');
      assert.match(outcome.message, /shrank while being sent/);
    } finally {
      s.server.close();
    }
  });
