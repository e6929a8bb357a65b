// A RHEL 7 kickstart checker for tests (pykickstart's ksvalidator is not packaged in Debian 12 and PyPI
// is out of reach here): commands and their options as pykickstart's RHEL7 handler accepts them,
// sections opened and closed with %end, and the RHVH rules of RHVH-PXE.md section 3.

const RHEL7_OPTIONS: Record<string, string[]> = {
  text: [], reboot: ['--eject', '--kexec'], zerombr: [],
  liveimg: ['--url', '--proxy', '--noverifyssl', '--checksum'],
  network: ['--device', '--bootproto', '--ip', '--netmask', '--gateway', '--nameserver', '--hostname', '--activate', '--onboot', '--noipv6', '--mtu', '--ipv6', '--nodefroute', '--bondslaves', '--bondopts', '--vlanid', '--nodns'],
  ignoredisk: ['--only-use', '--drives'],
  clearpart: ['--all', '--initlabel', '--drives', '--linux', '--none', '--list'],
  autopart: ['--type', '--fstype', '--encrypted', '--nohome', '--noboot', '--noswap'],
  part: ['--fstype', '--size', '--grow', '--ondisk', '--maxsize', '--asprimary', '--recommended'],
  volgroup: ['--reserved-percent', '--reserved-space', '--pesize', '--useexisting', '--noformat'],
  logvol: ['--vgname', '--name', '--fstype', '--recommended', '--thinpool', '--thin', '--poolname', '--size', '--grow', '--fsoptions', '--maxsize', '--percent', '--chunksize', '--metadatasize'],
  rootpw: ['--iscrypted', '--plaintext', '--lock'],
  lang: ['--addsupport'], keyboard: ['--vckeymap', '--xlayouts', '--switch'],
  timezone: ['--isUtc', '--utc', '--nontp', '--ntpservers'],
  selinux: ['--enforcing', '--permissive', '--disabled'],
  firewall: ['--enabled', '--disabled', '--service', '--port', '--trust', '--ssh'],
  services: ['--enabled', '--disabled'],
  bootloader: ['--append', '--location', '--timeout', '--iscrypted', '--password'],
};
const SECTIONS = ['%pre', '%post', '%addon', '%packages', '%anaconda', '%onerror', '%traceback'];

/** Shell-like split: double and single quotes group words (as pykickstart's shlex does). */
export function words(line: string): string[] {
  const out: string[] = [];
  let cur = ''; let q: string | undefined; let any = false;
  for (const c of line) {
    if (q) { if (c === q) q = undefined; else cur += c; continue; }
    if (c === '"' || c === "'") { q = c; any = true; continue; }
    if (/\s/.test(c)) { if (cur || any) out.push(cur); cur = ''; any = false; continue; }
    cur += c;
  }
  if (q) throw new Error(`unclosed quote in: ${line}`);
  if (cur || any) out.push(cur);
  return out;
}

export interface KsSummary { commands: Map<string, string[][]>; sections: { name: string; args: string[]; body: string[] }[] }

export function checkKickstart(text: string): { errors: string[]; summary: KsSummary } {
  const errors: string[] = [];
  const commands = new Map<string, string[][]>();
  const sections: KsSummary['sections'] = [];
  let open: KsSummary['sections'][number] | undefined;
  text.split('\n').forEach((raw, i) => {
    const n = i + 1;
    const line = raw.trim();
    if (open) {
      if (line === '%end') { sections.push(open); open = undefined; return; }
      if (SECTIONS.some((s) => line.startsWith(s + ' ') || line === s)) errors.push(`line ${n}: ${line} opens a section before ${open.name} was closed with %end`);
      open.body.push(raw);
      return;
    }
    if (!line || line.startsWith('#')) return;
    let w: string[];
    try { w = words(line); } catch (err) { errors.push(`line ${n}: ${(err as Error).message}`); return; }
    if (line.startsWith('%')) {
      if (!SECTIONS.includes(w[0])) errors.push(`line ${n}: unknown section ${w[0]}`);
      else open = { name: w[0], args: w.slice(1), body: [] };
      if (line === '%end') errors.push(`line ${n}: %end without an open section`);
      return;
    }
    const [cmd, ...args] = w;
    const allowed = RHEL7_OPTIONS[cmd];
    if (!allowed) { errors.push(`line ${n}: unknown or unexpected command "${cmd}"`); return; }
    for (const a of args) {
      if (!a.startsWith('--')) continue;
      const name = a.split('=')[0];
      if (!allowed.includes(name)) errors.push(`line ${n}: ${cmd} has no option ${name}`);
    }
    commands.set(cmd, [...(commands.get(cmd) ?? []), args]);
  });
  if (open) errors.push(`section ${open.name} is never closed with %end`);
  return { errors, summary: { commands, sections } };
}

/** RHVH's own rules on top of the syntax (RHVH-PXE.md section 3 and 4). */
export function checkRhvhKickstart(text: string): string[] {
  const { errors, summary } = checkKickstart(text);
  const c = summary.commands;
  const one = (cmd: string) => { const n = c.get(cmd)?.length ?? 0; if (n !== 1) errors.push(`expected exactly one ${cmd}, found ${n}`); };
  ['liveimg', 'zerombr', 'clearpart', 'rootpw', 'timezone', 'lang', 'keyboard', 'text', 'reboot', 'network'].forEach(one);
  if (!c.get('liveimg')?.[0]?.some((a) => /^--url=https?:\/\//.test(a))) errors.push('liveimg needs --url=http(s)://...');
  if (summary.sections.some((s) => s.name === '%packages')) errors.push('RHVH kickstarts must not have %packages');
  const auto = c.get('autopart');
  const custom = c.get('logvol');
  if (auto && custom) errors.push('autopart and a custom layout together');
  if (auto && !auto[0].includes('--type=thinp')) errors.push('autopart must be --type=thinp');
  if (!auto && !custom) errors.push('no partitioning (autopart --type=thinp or a custom thin layout)');
  if (!c.get('rootpw')?.[0]?.includes('--iscrypted')) errors.push('rootpw must be --iscrypted');
  const post = summary.sections.find((s) => s.name === '%post');
  if (!post) errors.push('no %post section');
  else {
    if (!post.body.some((l) => l.trim() === 'nodectl init')) errors.push('%post must run nodectl init');
    if (!post.args.includes('--erroronfail')) errors.push('%post should be --erroronfail');
    const lastCurl = [...post.body].reverse().find((l) => l.trim().startsWith('curl '));
    if (!lastCurl || !/\/built\//.test(lastCurl)) errors.push('the last curl of %post must call the built URL');
  }
  return errors;
}
