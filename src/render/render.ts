// Kickstart and boot-config rendering: pure functions of (host, profile, build, URLs) over eta templates
// loaded once into memory. autoEscape is off: these are not HTML, an "&" in a URL must stay "&".
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Eta } from 'eta';
import type { Host } from '../store/hosts.ts';
import type { ResolvedProfile as Profile } from '../profiles/schema.ts';
import { macToPxeName } from '../net/mac.ts';

export type BootConfigKind = 'pxelinux' | 'grub' | 'ipxe';
export type RenderKind = 'kickstart' | BootConfigKind;

export interface BuildContext {
  host: Host;
  profileName: string;
  profile: Profile;
  buildId: number;
  token: string;
  /** Public base URL of rackboot's HTTP server, without trailing slash. */
  baseUrl: string;
  /** host:port of rackboot's syslog receiver, when it is on: install configs add inst.syslog= for Anaconda. */
  syslog?: string;
  /** The kernel command of the GRUB this host boots (src/images/grub.ts decides): GRUB configs load the kernel once, with it. */
  grubKernelCommand?: 'linux' | 'linuxefi';
}

export type Rendered = { ok: true; text: string } | { ok: false; error: string };

export interface Renderer {
  kickstart(ctx: BuildContext): Rendered;
  installConfig(kind: BootConfigKind, ctx: BuildContext): Rendered;
  localConfig(kind: BootConfigKind, reason: string): string;
  /** The config for a default name (grub.cfg, pxelinux.cfg/default) asked by a client not tied to a host: never an install. */
  defaultConfig(kind: BootConfigKind, reason: string): string;
}

/** Reads every template once; rendering afterwards touches no file. */
export function createRenderer(templatesDir: string): Renderer {
  const eta = new Eta({ autoEscape: false, autoTrim: false, cache: true });
  for (const sub of ['boot', 'kickstart']) {
    for (const f of readdirSync(join(templatesDir, sub))) {
      if (f.endsWith('.eta')) eta.loadTemplate(`@${f.replace(/\.(ks\.)?eta$/, '')}`, readFileSync(join(templatesDir, sub, f), 'utf8'));
    }
  }
  return {
    kickstart: (ctx) => withData(ctx, (data) => eta.render('@rhvh', data)),
    installConfig: (kind, ctx) => withData(ctx, (data) => eta.render(`@${kind}-install`, data)),
    localConfig: (kind, reason) => eta.render(`@${kind}-local`, { reason: oneLine(reason) }),
    defaultConfig: (kind, reason) => eta.render(kind === 'grub' ? '@grub-default' : `@${kind}-local`, { reason: oneLine(reason) }),
  };
}

function oneLine(s: string): string { return s.replace(/[\r\n]+/g, ' '); }

/** A URL from a profile: absolute stays as it is; a relative path is served by rackboot under /images/. */
export function resolveImageUrl(baseUrl: string, value: string): string {
  return /^https?:\/\//.test(value) ? value : `${baseUrl}/images/${value.replace(/^\/+/, '')}`;
}

export function fqdnOf(host: Host, profile: Profile): string {
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

function withData(ctx: BuildContext, render: (data: object) => string): Rendered {
  const { host, profile } = ctx;
  const isStatic = profile.network.mode === 'static';
  if (isStatic && (!host.ip || !host.netmask)) {
    return { ok: false, error: `host ${host.hostname} (${host.mac}) has no ip/netmask, but profile ${ctx.profileName} uses a static network: set them on the host or use network.mode: dhcp` };
  }
  const data = {
    host,
    profileName: ctx.profileName,
    profile,
    buildId: ctx.buildId,
    urls: buildUrls(ctx),
    paths: { kernel: profile.image.kernel, initrd: profile.image.initrd },
    bootif: macToPxeName(host.mac),
    kernelArgs: profile.boot.kernelArgs.trim(),
    syslog: ctx.syslog,
    grubKernelCommand: ctx.grubKernelCommand ?? 'linux',
    layout: profile.partitioning,
    network: {
      static: isStatic,
      ip: host.ip,
      netmask: host.netmask,
      gateway: host.gateway,
      nameservers: host.nameservers.length ? host.nameservers : profile.network.nameservers,
      fqdn: fqdnOf(host, profile),
    },
  };
  try {
    return { ok: true, text: render(data) };
  } catch (err) {
    return { ok: false, error: `template error rendering for ${host.hostname}: ${(err as Error).message}` };
  }
}
