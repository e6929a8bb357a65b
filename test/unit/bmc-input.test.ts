// The BMC fields of a host, with the worst values an admin's script or a CSV could send.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkBmcInput } from '../../src/hosts/bmc-input.ts';

const ok = (raw: unknown) => {
  const r = checkBmcInput(raw);
  assert.ok(r.ok, JSON.stringify(r));
  return r.bmc;
};
const refused = (raw: unknown, field: string, why: RegExp) => {
  const r = checkBmcInput(raw);
  assert.equal(r.ok, false, `accepted ${JSON.stringify(raw)}`);
  assert.ok(
    !r.ok && r.errors.some((e) => e.startsWith(`${field}: `) && why.test(e)),
    `${JSON.stringify(raw)}: ${!r.ok && r.errors.join(' | ')}`,
  );
};
const redfish = { driver: 'redfish', address: 'https://10.0.0.5', username: 'root', password: 'calvin' };
const ipmi = { driver: 'ipmi', address: '10.0.0.6:623', username: 'ADMIN', password: 'ADMIN' };

test('good BMCs: https implied for Redfish, fingerprint normalised, CSV booleans', () => {
  assert.deepEqual(ok({ ...redfish, address: '10.0.0.5:8443/' }), {
    driver: 'redfish',
    address: 'https://10.0.0.5:8443',
    username: 'root',
    password: 'calvin',
    verifyTls: true,
  });
  const fp = 'AB:'.repeat(31) + 'AB';
  assert.equal(ok({ ...redfish, fingerprint: fp, verifyTls: 'no' }).fingerprint, 'ab'.repeat(32));
  assert.equal(ok({ ...redfish, verifyTls: 'false' }).verifyTls, false);
  assert.equal(
    ok({ ...redfish, address: 'https://[fd00::5]:443', system: 'System.Embedded.1' }).system,
    'System.Embedded.1',
  );
  assert.equal(ok({ ...redfish, address: 'idrac-r1-u01.example.com' }).address, 'https://idrac-r1-u01.example.com');
  assert.deepEqual(ok(ipmi), {
    driver: 'ipmi',
    address: '10.0.0.6:623',
    username: 'ADMIN',
    password: 'ADMIN',
    verifyTls: true,
  });
  assert.equal(ok({ ...ipmi, password: '' }).password, undefined, 'an empty password keeps the stored one');
  assert.equal(
    ok({ ...ipmi, password: 'p w=$(x);"\'' }).password,
    'p w=$(x);"\'',
    'passwords may hold anything printable',
  );
});

test('bad driver, missing and unknown fields', () => {
  refused({ ...redfish, driver: 'idrac' }, 'bmc.driver', /"redfish" or "ipmi"/);
  refused({ ...redfish, driver: undefined }, 'bmc.driver', /"redfish" or "ipmi"/);
  refused({ ...redfish, address: '' }, 'bmc.address', /required|string/);
  refused({ ...redfish, username: '' }, 'bmc.username', /required|string/);
  refused({ ...redfish, passwrd: 'x' }, 'bmc', /unknown field\(s\) passwrd/);
  refused('redfish://x', 'bmc', /object/);
  refused([redfish], 'bmc', /object/);
  refused({ ...redfish, verifyTls: 'maybe' }, 'bmc.verifyTls', /true or false/);
  refused({ ...redfish, username: 7 }, 'bmc.username', /string/);
});

test('addresses: spaces, schemes, paths, users, ports out of range', () => {
  refused({ ...redfish, address: 'https://10.0.0.5 ; reboot' }, 'bmc.address', /spaces/);
  refused({ ...redfish, address: 'http://10.0.0.5' }, 'bmc.address', /https/);
  refused({ ...redfish, address: 'ftp://10.0.0.5' }, 'bmc.address', /https/);
  refused({ ...redfish, address: 'https://10.0.0.5/redfish/v1' }, 'bmc.address', /no path/);
  refused({ ...redfish, address: 'https://root:calvin@10.0.0.5' }, 'bmc.address', /no path, query or user/);
  refused({ ...redfish, address: 'https://10.0.0.5:0' }, 'bmc.address', /1 to 65535/);
  refused({ ...redfish, address: 'https://10.0.0.5:65536' }, 'bmc.address', /1 to 65535/);
  refused({ ...redfish, address: 'https://10.0.0.5:-1' }, 'bmc.address', /1 to 65535/);
  refused({ ...redfish, address: 'https://10.0.0.5:99999999999' }, 'bmc.address', /1 to 65535/);
  refused({ ...redfish, address: 'https://999.1.1.1' }, 'bmc.address', /not an IPv4/);
  refused({ ...redfish, address: 'https://bad_host!' }, 'bmc.address', /not an IPv4/);
  refused({ ...ipmi, address: 'https://10.0.0.6' }, 'bmc.address', /no scheme/);
  refused({ ...ipmi, address: '10.0.0.6:70000' }, 'bmc.address', /1 to 65535/);
  refused({ ...redfish, address: '10.0.0.5\nHost: evil' }, 'bmc.address', /control characters/);
});

test('huge strings, control characters, CSV formulas', () => {
  const huge = 'a'.repeat(100_000);
  refused({ ...redfish, address: huge }, 'bmc.address', /at most 255/);
  refused({ ...redfish, username: huge }, 'bmc.username', /at most 64/);
  refused({ ...redfish, password: huge }, 'bmc.password', /at most 256/);
  refused({ ...redfish, system: huge }, 'bmc.system', /at most 128/);
  refused({ ...redfish, password: 'pw\u0000x' }, 'bmc.password', /control characters/);
  refused({ ...redfish, password: 'pw\nx' }, 'bmc.password', /control characters/);
  refused({ ...redfish, username: '=HYPERLINK("http://evil")' }, 'bmc.username', /must not start with =/);
  refused({ ...redfish, username: '@SUM(1)' }, 'bmc.username', /must not start with/);
  refused({ ...redfish, system: '=1+1' }, 'bmc.system', /Redfish system id/);
  refused({ ...redfish, system: '../../Managers/1' }, 'bmc.system', /Redfish system id/);
  refused({ ...redfish, fingerprint: 'abcd' }, 'bmc.fingerprint', /64 hex/);
  refused({ ...ipmi, username: 'a'.repeat(17) }, 'bmc.username', /16 bytes/);
  refused({ ...ipmi, password: 'p'.repeat(21) }, 'bmc.password', /20 bytes/);
  refused({ ...ipmi, system: 'x' }, 'bmc.system', /only Redfish/);
});
