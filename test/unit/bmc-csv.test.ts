// Rack CSV with bmc.* columns: every problem with its line and field, nothing accepted half-way.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkRackCsv, type ImportLookups } from '../../src/hosts/csv.ts';

const lookups: ImportLookups = {
  profileExists: (n) => n === 'rhvh-base',
  macTaken: () => false,
  ipTaken: () => false,
  hostnameTaken: () => false,
  mayImportBmc: true,
};
const HEAD = 'mac,hostname,profile,bmc.driver,bmc.address,bmc.username,bmc.password,bmc.system,bmc.verifyTls';

test('BMC columns become a BMC per host, kept apart from the host record', () => {
  const r = checkRackCsv(
    `${HEAD}\n52:54:00:00:00:01,h1,rhvh-base,redfish,10.0.0.11,root," pw, with ""quotes"" ",System.Embedded.1,false\n` +
      `52:54:00:00:00:02,h2,rhvh-base,ipmi,10.0.0.12:623,ADMIN,ADMIN,,\n52:54:00:00:00:03,h3,rhvh-base,,,,,,\n`,
    lookups,
  );
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.hosts.length, 3);
  assert.ok(!JSON.stringify(r.hosts).includes('pw, with'), 'the password is not in the host records');
  assert.deepEqual(r.bmc.get('52:54:00:00:00:01'), {
    driver: 'redfish',
    address: 'https://10.0.0.11',
    username: 'root',
    password: ' pw, with "quotes" ',
    system: 'System.Embedded.1',
    verifyTls: false,
  });
  assert.equal(r.bmc.get('52:54:00:00:00:02')?.driver, 'ipmi');
  assert.equal(r.bmc.has('52:54:00:00:00:03'), false);
});

test('every bad BMC cell is reported with its line and field, in one pass', () => {
  const r = checkRackCsv(
    `${HEAD}\n` +
      `52:54:00:00:00:01,h1,rhvh-base,idrac,10.0.0.11,root,pw,,\n` +
      `52:54:00:00:00:02,h2,rhvh-base,redfish,http://10.0.0.12,root,pw,,\n` +
      `52:54:00:00:00:03,h3,rhvh-base,ipmi,10.0.0.13:99999,root,pw,,\n` +
      `52:54:00:00:00:04,h4,rhvh-base,redfish,10.0.0.14,=HYPERLINK("http://x"),pw,,\n` +
      `52:54:00:00:00:05,h5,rhvh-base,redfish,10.0.0.15,root,,,\n` +
      `52:54:00:00:00:06,h6,rhvh-base,redfish,10.0.0.16,root,pw,=1+1,maybe\n` +
      `52:54:00:00:00:07,h7,rhvh-base,redfish,10.0.0.17 10.0.0.18,root,pw,,\n`,
    lookups,
  );
  assert.equal(r.ok, false);
  const text = !r.ok ? r.problems.join('\n') : '';
  for (const want of [
    /line 2: bmc\.driver: must be "redfish" or "ipmi"/,
    /line 3: bmc\.address: .*needs https/,
    /line 4: bmc\.address: port "99999" must be a number from 1 to 65535/,
    /line 5: bmc\.username: must not start with =/,
    /line 6: bmc\.password: required with a BMC/,
    /line 7: bmc\.system: must be a Redfish system id/,
    /line 7: bmc\.verifyTls: must be true or false/,
    /line 8: bmc\.address: .*must not contain spaces/,
  ])
    assert.match(text, want);
});

test('an unknown bmc column is named with the known ones', () => {
  const r = checkRackCsv('mac,hostname,profile,bmc.pass\n52:54:00:00:00:01,h1,rhvh-base,x\n', lookups);
  assert.equal(r.ok, false);
  assert.match(!r.ok ? r.problems[0] : '', /unknown column "bmc\.pass" \(known: .*bmc\.password/);
});

test('bmc columns from a caller who may not set BMCs (a tech): refused whole, 403', () => {
  const r = checkRackCsv(`${HEAD}\n52:54:00:00:00:01,h1,rhvh-base,redfish,10.0.0.11,root,pw,,\n`, {
    ...lookups,
    mayImportBmc: false,
  });
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.status, 403);
  assert.match(!r.ok ? r.problems[0] : '', /bmc\.\* columns: only an admin/);
});
