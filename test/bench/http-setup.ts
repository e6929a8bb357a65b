// Bench set-up: N hosts in build in a data dir; prints their kickstart paths, one per line.
import { writeFileSync } from 'node:fs';
import { loadConfig } from '../../src/config.ts';
import { openCore } from '../../src/serve.ts';
import { silentLogger } from '../../src/log.ts';
import type { Mac } from '../../src/net/mac.ts';

const [dataDir, profilesDir, publicUrl, count, out] = process.argv.slice(2);
const config = loadConfig({ 'data-dir': dataDir, 'profiles-dir': profilesDir, 'public-url': publicUrl }, {});
const core = await openCore(config, silentLogger());
const paths: string[] = [];
{
  const hosts = [];
  for (let n = 0; n < Number(count); n++) {
    const mac =
      `52:54:00:${((n >> 16) & 255).toString(16).padStart(2, '0')}:${((n >> 8) & 255).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}` as Mac;
    hosts.push({
      mac,
      hostname: `bench${n}`,
      profile: 'rhvh-stig-satellite',
      ip: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
      netmask: '255.0.0.0',
      nameservers: [],
      params: {},
    });
  }
  // One transaction for the lot.
  await core.hosts.insertMany(hosts);
}
for (let n = 0; n < Number(count); n++) {
  const h = (await core.hosts.getByHostname(`bench${n}`))!;
  const r = await core.provisioner.startBuild(h.mac, 'bench');
  if (!r.ok) throw new Error(r.message);
  // wrk fetches from 127.0.0.1: make that the address that fetched each kickstart first (as Anaconda's sendmac
  // request would), so the bench measures the re-fetch path instead of 403s.
  const first = await core.provisioner.kickstart(r.value.token, '127.0.0.1', [h.mac]);
  if (!first.ok) throw new Error(first.message);
  paths.push(new URL(r.value.kickstartUrl).pathname);
}
writeFileSync(out, paths.join('\n') + '\n');
await core.close();
