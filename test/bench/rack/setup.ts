// Rack bench set-up through rackboot's own API: add each MAC as a host (profile rhvh-base) and put it
// in build. With --capture DIR it also saves what rackboot serves for each host (pxelinux.cfg/01-<mac>
// and the kickstart, under DIR/tftp/pxelinux.cfg/ and DIR/ks/<token>): the reference run (dnsmasq +
// nginx) serves those bytes as static files. The set-up runs on the server's own address, which is no
// host's (a boot config fetched from it is the local-boot one): the config comes from the render API
// (its token masked, put back here), the kickstart from GET /ks/<token> with Anaconda's sendmac header.
// Usage: node --import tsx setup.ts --url http://10.98.0.1:8080 --macs FILE [--capture DIR]  (token in RACKBOOT_ADMIN_TOKEN)
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const argv = process.argv.slice(2);
const get = (n: string): string | undefined => {
  const i = argv.indexOf(`--${n}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const base = get('url') ?? 'http://127.0.0.1:8080';
const macs = readFileSync(get('macs') ?? '/dev/stdin', 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter(Boolean);
const capture = get('capture');
const token = process.env.RACKBOOT_ADMIN_TOKEN;
if (!token) throw new Error('setup: set RACKBOOT_ADMIN_TOKEN');
const auth = { authorization: `Bearer ${token}` };

async function call(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...auth, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return text ? JSON.parse(text) : undefined;
}
async function getText(url: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return text;
}

/** A few requests in flight, as an operator's script would do. */
async function each<T>(items: T[], n: number, fn: (x: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i], i);
      }
    }),
  );
}

const t0 = performance.now();
await each(macs, 8, async (mac, i) => {
  await call('POST', '/api/hosts', {
    mac,
    hostname: `rack-${String(i).padStart(3, '0')}`,
    profile: 'rhvh-base',
    rack: 'R98',
  });
});
const builds = new Map<string, { kickstartUrl: string; builtUrl: string; token: string }>();
await each(macs, 8, async (mac) => {
  const b = (await call('POST', `/api/hosts/${mac}/build`)) as {
    kickstartUrl?: string;
    builtUrl?: string;
    token?: string;
  };
  if (!b?.kickstartUrl || !b.builtUrl || !b.token)
    throw new Error(`POST /api/hosts/${mac}/build: no kickstartUrl/builtUrl/token in ${JSON.stringify(b)}`);
  builds.set(mac, { kickstartUrl: b.kickstartUrl, builtUrl: b.builtUrl, token: b.token });
});
console.log(`setup: ${macs.length} hosts added and in build in ${((performance.now() - t0) / 1000).toFixed(2)} s`);

if (capture) {
  mkdirSync(join(capture, 'tftp', 'pxelinux.cfg'), { recursive: true });
  mkdirSync(join(capture, 'ks'), { recursive: true });
  await each(macs, 8, async (mac) => {
    const name = `01-${mac.toLowerCase().replace(/:/g, '-')}`;
    const build = builds.get(mac)!;
    const masked = await getText(`${base}/api/hosts/${mac}/render/pxelinux`, auth);
    const cfg = masked.replaceAll('TOKEN', build.token);
    const ks = build.kickstartUrl;
    if (!cfg.includes(`inst.ks=${ks}`))
      throw new Error(`capture: pxelinux.cfg/${name} does not carry inst.ks=${ks}:\n${cfg}`);
    const ksText = await getText(ks, { 'X-RHN-Provisioning-MAC-0': `eth0 ${mac}` });
    if (!ksText.includes(builds.get(mac)!.builtUrl))
      throw new Error(`capture: kickstart of ${mac} does not call ${builds.get(mac)!.builtUrl}`);
    writeFileSync(join(capture, 'tftp', 'pxelinux.cfg', name), cfg);
    writeFileSync(join(capture, 'ks', new URL(ks).pathname.split('/').pop()!), ksText);
  });
  console.log(`setup: captured ${macs.length} boot configs and kickstarts in ${capture}`);
}
