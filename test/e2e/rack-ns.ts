// Imported first by rack-power.test.ts: its lab namespace has a name of its own (lab.ts reads it when loaded).
process.env.RACKBOOT_E2E_NS ??= 'rbrack';
