// The structural check of a rendered kickstart, run before it is served or a build starts. It reads the text the
// way pykickstart does (parser.py: str.splitlines(), shlex with comments, sections ended by %end, "%" at the start of
// any line is syntax) and compares what it finds with what the template emits for this profile: the same sections,
// the same commands, no line break other than "\n". pykickstart's own ksvalidator checks the same files in tests.
import { describeChar } from '../profiles/grammar.ts';
import type { ResolvedProfile as Profile } from '../profiles/schema.ts';

/** Commands and options as pykickstart's RHEL7 handler accepts them (the subset rackboot writes). */
const RHEL7_OPTIONS: Record<string, string[]> = {
  text: [],
  reboot: ['--eject', '--kexec'],
  zerombr: [],
  liveimg: ['--url', '--proxy', '--noverifyssl', '--checksum'],
  network: [
    '--device',
    '--bootproto',
    '--ip',
    '--netmask',
    '--gateway',
    '--nameserver',
    '--hostname',
    '--activate',
    '--onboot',
    '--noipv6',
    '--mtu',
    '--ipv6',
    '--nodefroute',
    '--bondslaves',
    '--bondopts',
    '--vlanid',
    '--nodns',
  ],
  ignoredisk: ['--only-use', '--drives'],
  clearpart: ['--all', '--initlabel', '--drives', '--linux', '--none', '--list'],
  autopart: ['--type', '--fstype', '--encrypted', '--nohome', '--noboot', '--noswap'],
  reqpart: ['--add-boot'],
  part: ['--fstype', '--size', '--grow', '--ondisk', '--maxsize', '--asprimary', '--recommended'],
  volgroup: ['--reserved-percent', '--reserved-space', '--pesize', '--useexisting', '--noformat'],
  logvol: [
    '--vgname',
    '--name',
    '--fstype',
    '--recommended',
    '--thinpool',
    '--thin',
    '--poolname',
    '--size',
    '--grow',
    '--fsoptions',
    '--maxsize',
    '--percent',
    '--chunksize',
    '--metadatasize',
  ],
  rootpw: ['--iscrypted', '--plaintext', '--lock'],
  lang: ['--addsupport'],
  keyboard: ['--vckeymap', '--xlayouts', '--switch'],
  timezone: ['--isUtc', '--utc', '--nontp', '--ntpservers'],
  selinux: ['--enforcing', '--permissive', '--disabled'],
  firewall: ['--enabled', '--disabled', '--service', '--port', '--trust', '--ssh'],
  services: ['--enabled', '--disabled'],
  bootloader: ['--append', '--location', '--timeout', '--iscrypted', '--password'],
};
const SECTIONS = ['%pre', '%post', '%addon', '%packages', '%anaconda', '%onerror', '%traceback', '%pre-install'];

/** Everything Python's str.splitlines() breaks at besides "\n", and every other control character but tab. */
// eslint-disable-next-line no-control-regex -- control characters are what it finds
const STRAY_CHAR = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/;

/** shlex.split (POSIX, whitespace_split) as pykickstart calls it: quotes group, backslash escapes, "#" may end the line. */
export function words(line: string, comments = true): string[] {
  const out: string[] = [];
  let cur = '';
  let q: string | undefined;
  let any = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q === "'") {
      if (c === q) q = undefined;
      else cur += c;
      continue;
    }
    if (q === '"') {
      if (c === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) {
        cur += line[++i];
        continue;
      }
      if (c === q) q = undefined;
      else cur += c;
      continue;
    }
    if (c === '\\') {
      if (i + 1 < line.length) cur += line[++i];
      any = true;
      continue;
    }
    if (c === '"' || c === "'") {
      q = c;
      any = true;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      if (cur || any) out.push(cur);
      cur = '';
      any = false;
      continue;
    }
    if (comments && c === '#') break;
    cur += c;
  }
  if (q) throw new Error(`unclosed quote in: ${line}`);
  if (cur || any) out.push(cur);
  return out;
}

export interface KsSection {
  name: string;
  args: string[];
  body: string[];
  line: number;
}
export interface KsSummary {
  commands: Map<string, string[][]>;
  sections: KsSection[];
}

/** Syntax only: characters, sections and their %end, known commands and options. */
export function checkKickstart(text: string): { errors: string[]; summary: KsSummary } {
  const errors: string[] = [];
  const commands = new Map<string, string[][]>();
  const sections: KsSection[] = [];
  let open: KsSection | undefined;
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const n = i + 1;
    const stray = STRAY_CHAR.exec(raw);
    if (stray)
      errors.push(
        `line ${n}: character ${describeChar(stray[0].codePointAt(0)!)} (the kickstart parser would break or misread the line here)`,
      );
    const line = raw.trim();
    // pykickstart reads a line whose first non-blank character is "%" as kickstart syntax, inside sections too.
    const pct = /^\s*%/.test(raw);
    if (open) {
      if (line === '%end') {
        sections.push(open);
        open = undefined;
        return;
      }
      if (pct)
        errors.push(
          `line ${n}: "${line.split(/\s/)[0]}" at the start of a line inside ${open.name} (the parser would take it as kickstart syntax)`,
        );
      open.body.push(raw);
      return;
    }
    if (!line || line.startsWith('#')) return;
    let w: string[];
    try {
      w = words(line);
    } catch (err) {
      errors.push(`line ${n}: ${(err as Error).message}`);
      return;
    }
    if (!w.length) return;
    if (pct) {
      if (w[0] === '%end') errors.push(`line ${n}: %end without an open section`);
      else if (!SECTIONS.includes(w[0])) errors.push(`line ${n}: unknown section ${w[0]}`);
      else open = { name: w[0], args: w.slice(1), body: [], line: n };
      return;
    }
    const [cmd, ...args] = w;
    const allowed = RHEL7_OPTIONS[cmd];
    if (!allowed) {
      errors.push(`line ${n}: unknown or unexpected command "${cmd}"`);
      return;
    }
    for (const a of args) {
      if (!a.startsWith('--')) continue;
      const name = a.split('=')[0];
      if (!allowed.includes(name)) errors.push(`line ${n}: ${cmd} has no option ${name}`);
    }
    commands.set(cmd, [...(commands.get(cmd) ?? []), args]);
  });
  if (open) errors.push(`section ${open.name} (line ${open.line}) is never closed with %end`);
  return { errors, summary: { commands, sections } };
}

/** RHVH's own rules on top of the syntax (RHVH-PXE.md sections 3 and 4). */
export function checkRhvhKickstart(text: string, parsed = checkKickstart(text)): string[] {
  const errors = [...parsed.errors];
  const { summary } = parsed;
  const c = summary.commands;
  const one = (cmd: string) => {
    const n = c.get(cmd)?.length ?? 0;
    if (n !== 1) errors.push(`expected exactly one ${cmd}, found ${n}`);
  };
  [
    'liveimg',
    'zerombr',
    'clearpart',
    'rootpw',
    'timezone',
    'lang',
    'keyboard',
    'text',
    'reboot',
    'network',
    'bootloader',
  ].forEach(one);
  if (!c.get('liveimg')?.[0]?.some((a) => /^--url=https?:\/\//.test(a)))
    errors.push('liveimg needs --url=http(s)://...');
  if (summary.sections.some((s) => s.name === '%packages')) errors.push('RHVH kickstarts must not have %packages');
  const auto = c.get('autopart');
  const custom = c.get('logvol');
  if (auto && custom) errors.push('autopart and a custom layout together');
  if (auto && !auto[0].includes('--type=thinp')) errors.push('autopart must be --type=thinp');
  if (!auto && !custom) errors.push('no partitioning (autopart --type=thinp or a custom thin layout)');
  // A custom layout has no EFI System Partition or biosboot of its own: reqpart adds what the firmware needs.
  if (custom && !c.get('reqpart'))
    errors.push('a custom layout needs reqpart (EFI System Partition on UEFI, biosboot on BIOS with GPT)');
  if (!c.get('rootpw')?.[0]?.includes('--iscrypted')) errors.push('rootpw must be --iscrypted');
  const post = summary.sections.filter((s) => s.name === '%post');
  if (post.length !== 1) errors.push(`expected one %post section, found ${post.length}`);
  else {
    if (!post[0].body.some((l) => l.trim() === 'nodectl init')) errors.push('%post must run nodectl init');
    if (!post[0].args.includes('--erroronfail')) errors.push('%post should be --erroronfail');
    const lastCurl = [...post[0].body].reverse().find((l) => l.trim().startsWith('curl '));
    if (!lastCurl || !/\/built\//.test(lastCurl)) errors.push('the last curl of %post must call the built URL');
  }
  return errors;
}

export interface KickstartShape {
  sections: string[];
  commands: string[];
}

/** What rhvh.ks.eta emits for this profile: section names in order, and each command as often as it appears. */
export function expectedShape(profile: Pick<Profile, 'partitioning' | 'stig'>): KickstartShape {
  const p = profile.partitioning;
  const commands = ['text', 'liveimg', 'network'];
  if (p.disks?.length || (p.layout === 'custom' && p.disk)) commands.push('ignoredisk');
  commands.push('zerombr', 'clearpart');
  if (p.layout === 'autopart') commands.push('autopart');
  else commands.push('reqpart', 'part', 'part', 'volgroup', 'logvol', 'logvol', ...p.volumes.map(() => 'logvol'));
  commands.push('bootloader', 'rootpw', 'lang', 'keyboard', 'timezone', 'selinux', 'firewall', 'services', 'reboot');
  return { sections: [...(profile.stig.enabled ? ['%addon'] : []), '%pre', '%post'], commands: commands.sort() };
}

/** Syntax, RHVH rules, and the shape the template promises: the reasons a kickstart must not be served, or []. */
export function verifyKickstart(text: string, profile: Pick<Profile, 'partitioning' | 'stig'>): string[] {
  const parsed = checkKickstart(text);
  const errors = checkRhvhKickstart(text, parsed);
  const { summary } = parsed;
  const want = expectedShape(profile);
  const gotSections = summary.sections.map((s) => s.name);
  if (gotSections.join(' ') !== want.sections.join(' '))
    errors.push(`sections are ${gotSections.join(' ') || 'none'}, expected ${want.sections.join(' ')}`);
  const gotCommands = [...summary.commands.entries()].flatMap(([cmd, uses]) => uses.map(() => cmd)).sort();
  if (gotCommands.join(' ') !== want.commands.join(' ')) {
    const extra = diff(gotCommands, want.commands);
    const missing = diff(want.commands, gotCommands);
    const parts = [
      extra.length ? `unexpected ${extra.join(', ')}` : '',
      missing.length ? `missing ${missing.join(', ')}` : '',
    ].filter(Boolean);
    errors.push(`commands differ from the template's: ${parts.join('; ')}`);
  }
  return [...new Set(errors)];
}

function diff(a: string[], b: string[]): string[] {
  const left = [...b];
  return a.filter((x) => {
    const i = left.indexOf(x);
    if (i < 0) return true;
    left.splice(i, 1);
    return false;
  });
}
