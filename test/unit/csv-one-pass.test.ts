// Rack import reports every problem in one pass (issue #14): a bad header no longer hides the rows' errors,
// and what would only fail at Build (a static network without an address, a parameter the profile does not
// have) is refused at import with the line, the column and the reason. The shipped profiles, loaded for real.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { checkRackCsv, type ImportLookups } from '../../src/hosts/csv.ts';
import { buildReadinessProblems } from '../../src/hosts/readiness.ts';
import { guardHostParams } from '../../src/hosts/policy.ts';
import { loadProfiles } from '../../src/profiles/load.ts';
import { readProfileDir } from '../../src/profiles/catalog.ts';
import { REPO } from '../support/core.ts';

const profiles = loadProfiles(readProfileDir(join(REPO, 'profiles'))).profiles;
const lookups: ImportLookups = {
  profileExists: (n) => profiles.has(n),
  macTaken: () => false,
  ipTaken: () => false,
  hostnameTaken: () => false,
  hostProblems: (h) => guardHostParams({ role: 'admin', allowed: [], profile: (n) => profiles.get(n) }, {}, h),
  buildProblems: (h) => buildReadinessProblems(profiles.get(h.profile), h),
};
const problems = (csv: string) => {
  const r = checkRackCsv(csv, lookups);
  assert.equal(r.ok, false, 'refused');
  return r.ok ? [] : r.problems;
};

test('an unknown column is reported and every row is still checked (it used to hide them all)', () => {
  const p = problems(
    [
      'mac,hostname,profile,rackk',
      'not-a-mac,n1,rhvh-base,R1',
      '52:54:00:00:00:02,n_2!,rhvh-base,R1',
      '52:54:00:00:00:03,n3,no-such-profile,R1',
      '52:54:00:00:00:04,n4,rhvh-base,R1',
    ].join('\n'),
  );
  assert.match(p[0]!, /^line 1: unknown column "rackk"/);
  assert.ok(
    p.some((x) => /^line 2: mac: /.test(x)),
    p.join('\n'),
  );
  assert.ok(
    p.some((x) => /^line 3: hostname: /.test(x)),
    p.join('\n'),
  );
  assert.ok(
    p.some((x) => /^line 4: profile: /.test(x)),
    p.join('\n'),
  );
  assert.ok(!p.some((x) => x.startsWith('line 5:')), 'the good row has no problem of its own');
});

test('a missing required column is said once on the header, not "required" on every row', () => {
  const p = problems('mac,hostname\n52:54:00:00:00:01,n1\n52:54:00:00:00:02,bad name\n');
  assert.deepEqual(
    p.filter((x) => x.includes('profile')),
    ['line 1: missing column "profile"'],
  );
  assert.ok(
    p.some((x) => /^line 3: hostname: /.test(x)),
    'the row errors still come',
  );
});

test('a column given twice is refused (which value would win?)', () => {
  const p = problems('mac,hostname,profile,ip,ip\n52:54:00:00:00:01,n1,rhvh-base,10.0.0.1,10.0.0.2\n');
  assert.ok(p.includes('line 1: column "ip" appears twice'), p.join('\n'));
});

test('a static-network profile without an address is refused at import, naming the column', () => {
  const p = problems(
    [
      'mac,hostname,profile,ip,netmask',
      '52:54:00:00:00:01,n1,rhvh-stig-satellite,,',
      '52:54:00:00:00:02,n2,rhvh-stig-satellite,10.0.0.2,',
      '52:54:00:00:00:03,n3,rhvh-stig-satellite,10.0.0.3,255.255.255.0',
    ].join('\n'),
  );
  assert.ok(
    p.some((x) => /^line 2: ip: profile rhvh-stig-satellite uses a static network/.test(x)),
    p.join('\n'),
  );
  assert.ok(p.some((x) => /^line 2: netmask: /.test(x)));
  assert.ok(p.some((x) => /^line 3: netmask: /.test(x)));
  assert.ok(!p.some((x) => x.startsWith('line 3: ip:')));
  assert.ok(!p.some((x) => x.startsWith('line 4:')), 'the complete row passes');
});

test('a parameter that makes a DHCP profile static needs the address too', () => {
  const p = problems('mac,hostname,profile,param.network.mode\n52:54:00:00:00:01,n1,rhvh-base,static\n');
  assert.ok(
    p.some((x) => /^line 2: ip: /.test(x)),
    p.join('\n'),
  );
});

test('a parameter the profile does not have is refused with its CSV column', () => {
  const p = problems('mac,hostname,profile,param.boot.kernelArgz\n52:54:00:00:00:01,n1,rhvh-base,quiet\n');
  assert.equal(p.length, 1, p.join('\n'));
  assert.match(p[0]!, /^line 2: param\.boot\.kernelArgz: not a field of the profile/);
});

test('a clean file still imports', () => {
  const r = checkRackCsv(
    'mac,hostname,profile,ip,netmask\n52:54:00:00:00:01,n1,rhvh-stig-satellite,10.0.0.1,255.255.255.0\n',
    lookups,
  );
  assert.equal(r.ok, true);
});
