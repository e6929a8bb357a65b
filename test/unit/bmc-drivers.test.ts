// Pure parts of the BMC drivers: addresses, ipmitool's argv (never the password), its error texts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { explainIpmitool, ipmiTarget, ipmitoolArgs } from '../../src/bmc/ipmi.ts';
import { normalizeFingerprint, redfishBase } from '../../src/bmc/redfish.ts';

test('ipmitool argv: lanplus, cipher suite 3, -E for the password, which is never in argv', () => {
  const args = ipmitoolArgs(
    { driver: 'ipmi', address: '10.0.0.5:6230', username: 'root', password: 'hunter2-$(reboot)', verifyTls: true },
    ['chassis', 'power', 'status'],
  );
  assert.deepEqual(args.slice(0, 11), ['-I', 'lanplus', '-C', '3', '-H', '10.0.0.5', '-p', '6230', '-U', 'root', '-E']);
  assert.deepEqual(args.slice(-3), ['chassis', 'power', 'status']);
  assert.ok(!args.some((a) => a.includes('hunter2')));
  assert.ok(!args.includes('-P'));
});

test('IPMI addresses: default port 623, IPv6 in brackets', () => {
  assert.deepEqual(ipmiTarget('10.0.0.5'), { host: '10.0.0.5', port: 623 });
  assert.deepEqual(ipmiTarget('bmc-r1-u01:624'), { host: 'bmc-r1-u01', port: 624 });
  assert.deepEqual(ipmiTarget('[fd00::5]:6230'), { host: 'fd00::5', port: 6230 });
  assert.deepEqual(ipmiTarget('[fd00::5]'), { host: 'fd00::5', port: 623 });
});

test("ipmitool's texts: wrong credentials are final, no answer is worth a retry", () => {
  const wrong = explainIpmitool(
    'Loading IANA PEN Registry...\n> RAKP 2 HMAC is invalid\nError: Unable to establish IPMI v2 / RMCP+ session\n',
  );
  assert.equal(wrong.retryable, false);
  assert.match(wrong.answer, /wrong username or password \(RAKP 2 HMAC is invalid\)/);
  const silent = explainIpmitool(
    'Get Auth Capabilities error\nError issuing Get Channel Authentication Capabilities request\nError: Unable to establish IPMI v2 / RMCP+ session\n',
  );
  assert.equal(silent.retryable, true);
  assert.match(silent.answer, /no answer on UDP/);
  const other = explainIpmitool(' Device not present (Invalid data field in request)\n');
  assert.deepEqual(other, { answer: 'Device not present (Invalid data field in request)', retryable: false });
});

test('Redfish addresses: https unless written otherwise; fingerprints compare in any spelling', () => {
  assert.equal(redfishBase('10.0.0.5').href, 'https://10.0.0.5/');
  assert.equal(redfishBase('https://bmc1:8443').origin, 'https://bmc1:8443');
  assert.equal(redfishBase('http://127.0.0.1:8000').protocol, 'http:');
  assert.equal(normalizeFingerprint('AB:cd:01'), 'abcd01');
});
