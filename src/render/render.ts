// Kickstart and boot-config rendering: pure functions of (host, profile, build, URLs) over a compiled template library
// (templates.ts). autoEscape is off: these are not HTML, an "&" in a URL must stay "&". Instead every value reaches a
// template through the escape function of its target syntax (escape.ts), and the kickstart is checked
// (kickstart-check.ts) before it is handed out.
import type { Mac } from '../net/mac.ts';
import type { ResolvedProfile as Profile } from '../profiles/schema.ts';
import { macToPxeName } from '../net/mac.ts';
import { EscapeError, escapes, grubWord, ipxeWord, pxelinuxWord, type Escapes } from './escape.ts';
import { checkRhvhKickstart, verifyKickstart } from './kickstart-check.ts';
import { DEFAULT_KICKSTART_TEMPLATE, TemplateFault, type TemplateLibrary } from './templates.ts';
import { nextLibrary, readTemplateDirs } from './template-catalog.ts';

export type BootConfigKind = 'pxelinux' | 'grub' | 'ipxe';
export type RenderKind = 'kickstart' | BootConfigKind;

/** What rendering needs of a host; the store's Host record satisfies it. */
export interface RenderHost {
  mac: Mac;
  hostname: string;
  ip?: string;
  netmask?: string;
  gateway?: string;
  nameservers: readonly string[];
  domain?: string;
}

export interface BuildContext {
  host: RenderHost;
  profileName: string;
  profile: Profile;
  buildId: number;
  token: string;
  /** Public base URL of rackboot's HTTP server, without trailing slash. */
  baseUrl: string;
  /** host:port of rackboot's syslog receiver, when it is on: install configs add inst.syslog= for Anaconda. */
  syslog?: string;
  /**
   * The kernel/initrd command pair of the GRUB that will read the config: RHEL's shim-chained GRUB has linuxefi and
   * initrdefi, upstream GRUB 2.04+ boots EFI kernels with linux/initrd. Exactly one pair is written: a trial
   * `if linuxefi ...; else linux ...` makes GRUB 2.06 read the whole kernel, fail, and fetch it again. Default linux.
   */
  grubKernelCommand?: 'linux' | 'linuxefi';
}

/** A refusal names the template file (and line) when a template caused it. */
export type Rendered = { ok: true; text: string } | { ok: false; error: string; file?: string; line?: number };

export interface Renderer {
  kickstart(ctx: BuildContext): Rendered;
  installConfig(kind: BootConfigKind, ctx: BuildContext): Rendered;
  localConfig(kind: BootConfigKind, reason: string): string;
  /** The config for a default name (grub.cfg, pxelinux.cfg/default) asked by a client not tied to a host: never an install. */
  defaultConfig(kind: BootConfigKind, reason: string): string;
}

/** The kickstart template a profile names (profile field `kickstart`), or the shipped one. */
export function kickstartTemplateOf(profile: Pick<Profile, 'kickstart'>): string {
  return profile.kickstart ?? DEFAULT_KICKSTART_TEMPLATE;
}

/**
 * A renderer over a templates directory (read once), or over a live library (the catalog's current one, read at each
 * render so a reload takes effect at the next request).
 */
export function createRenderer(templates: string | (() => TemplateLibrary)): Renderer {
  let library: () => TemplateLibrary;
  if (typeof templates === 'string') {
    const fixed = nextLibrary(undefined, readTemplateDirs({ shipped: templates }));
    library = () => fixed;
  } else library = templates;
  const boot = (name: string, data: object) => library().render('boot', `${name}.eta`, data);
  return {
    kickstart: (ctx) => {
      const lib = library();
      const name = kickstartTemplateOf(ctx.profile);
      const entry = lib.entries.find((e) => e.kind === 'kickstart' && e.name === name);
      if (!entry) {
        return {
          ok: false,
          error: `profile ${ctx.profileName} names the kickstart template ${name}, which is not loaded (templates: ${lib.names('kickstart').join(', ') || 'none'}; see rackboot templates list)`,
        };
      }
      const r = withData(ctx, undefined, (data) => lib.render('kickstart', name, data));
      if (!r.ok) return r;
      // The shipped template promises an exact shape; an operator's own template is held to the syntax and RHVH rules.
      const problems =
        entry.origin === 'shipped' && name === DEFAULT_KICKSTART_TEMPLATE
          ? verifyKickstart(r.text, ctx.profile)
          : checkRhvhKickstart(r.text);
      if (!problems.length) return r;
      return {
        ok: false,
        file: entry.file,
        error: `the kickstart rendered for ${ctx.host.hostname} (profile ${ctx.profileName}, template ${entry.file}) fails its check: ${problems.join('; ')}`,
      };
    },
    installConfig: (kind, ctx) => withData(ctx, kind, (data) => boot(`${kind}-install`, data)),
    localConfig: (kind, reason) => boot(`${kind}-local`, { reason: oneLine(reason), esc: escapes }),
    defaultConfig: (kind, reason) =>
      boot(kind === 'grub' ? 'grub-default' : `${kind}-local`, { reason: oneLine(reason), esc: escapes }),
  };
}

/** A reason shown in a local-boot config: control characters and line separators become spaces. */
function oneLine(s: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what it removes
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ');
}

/** A URL from a profile: absolute stays as it is; a relative path is served by rackboot under /images/. */
export function resolveImageUrl(baseUrl: string, value: string): string {
  return /^https?:\/\//.test(value) ? value : `${baseUrl}/images/${value.replace(/^\/+/, '')}`;
}

export function fqdnOf(host: RenderHost, profile: Profile): string {
  const domain = host.domain ?? profile.network.domain;
  return host.hostname.includes('.') || !domain ? host.hostname : `${host.hostname}.${domain}`;
}

export function buildUrls(ctx: BuildContext) {
  const { baseUrl: b, token: t, profile: p, host } = ctx;
  return {
    kickstart: `${b}/ks/${t}`,
    built: `${b}/built/${t}`,
    failed: `${b}/failed/${t}`,
    events: `${b}/events/${t}`,
    stage2: resolveImageUrl(b, p.image.stage2),
    liveimg: resolveImageUrl(b, p.image.liveimg),
    kernel: `${b}/tftp/${p.image.kernel}`,
    initrd: `${b}/tftp/${p.image.initrd}`,
    self: `${b}/boot/ipxe/${host.mac}`,
  };
}

/** A kernel argument and the profile field (or rackboot setting) it comes from, for errors. */
interface KernelWord {
  word: string;
  field: string;
}

/**
 * The installer's kernel arguments, rackboot's own first. inst.ks.sendmac makes Anaconda send X-RHN-Provisioning-MAC-*
 * headers with the kickstart request, so rackboot can check who asks. pxelinux gets BOOTIF from IPAPPEND 2 instead.
 */
function installWords(ctx: BuildContext, urls: ReturnType<typeof buildUrls>, kind: BootConfigKind): KernelWord[] {
  const out: KernelWord[] = [
    { word: `inst.stage2=${urls.stage2}`, field: 'image.stage2' },
    { word: `inst.ks=${urls.kickstart}`, field: 'the kickstart URL (--public-url)' },
  ];
  if (ctx.syslog) out.push({ word: `inst.syslog=${ctx.syslog}`, field: 'the syslog receiver address' });
  if (kind !== 'pxelinux') out.push({ word: `BOOTIF=${macToPxeName(ctx.host.mac)}`, field: 'the host MAC' });
  out.push({ word: 'inst.ks.sendmac', field: 'inst.ks.sendmac' });
  for (const w of ctx.profile.boot.kernelArgs.split(' ').filter(Boolean))
    out.push({ word: w, field: 'boot.kernelArgs' });
  return out;
}

const WORD_ESCAPE: Record<BootConfigKind, (v: string) => string> = {
  pxelinux: pxelinuxWord,
  grub: grubWord,
  ipxe: ipxeWord,
};

function escapeWords(kind: BootConfigKind, words: KernelWord[]): string {
  return words
    .map(({ word, field }) => {
      try {
        return WORD_ESCAPE[kind](word);
      } catch (err) {
        if (err instanceof EscapeError) throw new EscapeError(err.target, err.value, `${err.reason} (from ${field})`);
        throw err;
      }
    })
    .join(' ');
}

function withData(ctx: BuildContext, kind: BootConfigKind | undefined, render: (data: object) => string): Rendered {
  const { host, profile } = ctx;
  const isStatic = profile.network.mode === 'static';
  if (isStatic && (!host.ip || !host.netmask)) {
    return {
      ok: false,
      error: `host ${host.hostname} (${host.mac}) has no ip/netmask, but profile ${ctx.profileName} uses a static network: set them on the host or use network.mode: dhcp`,
    };
  }
  // Escapes called from a template record the first failure instead of throwing through eta; it is reported below.
  let failure: EscapeError | undefined;
  const guard =
    (f: (v: string) => string) =>
    (v: unknown): string => {
      try {
        return f(String(v));
      } catch (err) {
        if (!(err instanceof EscapeError)) throw err;
        failure ??= err;
        return '';
      }
    };
  const esc: Escapes = {
    ks: guard(escapes.ks),
    sh: guard(escapes.sh),
    grub: guard(escapes.grub),
    ipxe: guard(escapes.ipxe),
    pxelinux: guard(escapes.pxelinux),
    comment: guard(escapes.comment),
    snippet: guard(escapes.snippet),
  };
  const p = profile.partitioning;
  const disks = p.disks ?? (p.layout === 'custom' && p.disk ? [p.disk] : []);
  const urls = buildUrls(ctx);
  try {
    const installArgs = kind ? escapeWords(kind, installWords(ctx, urls, kind)) : '';
    const data = {
      esc,
      host,
      profileName: ctx.profileName,
      profile,
      buildId: ctx.buildId,
      urls,
      paths: { kernel: profile.image.kernel, initrd: profile.image.initrd },
      bootif: macToPxeName(host.mac),
      installArgs,
      grub:
        ctx.grubKernelCommand === 'linuxefi'
          ? { linux: 'linuxefi', initrd: 'initrdefi' }
          : { linux: 'linux', initrd: 'initrd' },
      layout: p,
      disks,
      hostKernelArgs: profile.boot.hostKernelArgs.split(' ').filter(Boolean).join(' '),
      network: {
        static: isStatic,
        ip: host.ip,
        netmask: host.netmask,
        gateway: host.gateway,
        nameservers: host.nameservers.length ? host.nameservers : profile.network.nameservers,
        fqdn: fqdnOf(host, profile),
      },
    };
    const text = render(data);
    if (failure)
      return {
        ok: false,
        error: `cannot render ${kind ? `the ${kind} install config` : 'the kickstart'} for ${host.hostname}: ${failure.message}`,
      };
    return { ok: true, text };
  } catch (err) {
    if (err instanceof EscapeError)
      return { ok: false, error: `cannot render the ${kind} install config for ${host.hostname}: ${err.message}` };
    if (err instanceof TemplateFault)
      return {
        ok: false,
        file: err.file,
        line: err.line,
        error: `template error rendering for ${host.hostname} (profile ${ctx.profileName}): ${err.message}`,
      };
    return { ok: false, error: `template error rendering for ${host.hostname}: ${(err as Error).message}` };
  }
}
