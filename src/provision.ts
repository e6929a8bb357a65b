// The build lifecycle and everything a booting machine asks for, on top of the store, the profiles
// and the renderer. HTTP, TFTP and DHCP are thin adapters over this.
import type { Logger } from './log.ts';
import { tokenHint } from './log.ts';
import type { Mac } from './net/mac.ts';
import { ipToHex } from './net/mac.ts';
import type { HostStore, Host } from './store/hosts.ts';
import type { Build, BuildStore, HostState } from './store/builds.ts';
import { stateOf } from './store/builds.ts';
import type { EventLog, HostEvent } from './store/events.ts';
import type { AuditLog } from './store/audit.ts';
import type { LoadedProfile } from './profiles/load.ts';
import { applyHostParams } from './profiles/load.ts';
import type { ImageFiles, ResolvedProfile as Profile } from './profiles/schema.ts';
import type { BootConfigKind, BuildContext, Renderer } from './render/render.ts';
import { buildUrls } from './render/render.ts';
import type { ConfigRequest } from './boot/paths.ts';
import type { HostBootState } from './boot/decide.ts';

export interface ProvisionDeps {
  hosts: HostStore;
  builds: BuildStore;
  events: EventLog;
  audit: AuditLog;
  profiles: { get(name: string): LoadedProfile | undefined };
  renderer: Renderer;
  /** Imported images by name (src/images); a profile may say `image: NAME`. */
  images?: { resolve(name: string): ImageFiles | undefined };
  /** Last resort for IP -> MAC (bound DHCP leases, then the kernel's ARP table); tests leave it out. */
  neighbor?: (ip: string) => Mac | undefined;
  log: Logger;
  baseUrl: string;
  tokenTtlMs: number;
  now?: () => number;
  /** The installer's last log lines (syslog) of a build, put into its build.failed event. */
  failureTail?: (buildId: number) => string[];
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; status: number; message: string };

export interface BuildStarted { token: string; kickstartUrl: string; builtUrl: string; failedUrl: string; eventsUrl: string; expiresAt: string; buildId: number }

export class Provisioner {
  /** Which MAC a client IP belongs to, learnt from DHCP and per-MAC config requests: TFTP events carry only an IP. */
  private readonly ipToMac = new Map<string, Mac>();
  private readonly neighborMisses = new Map<string, number>();
  private readonly kickstartCache = new Map<number, { loaded: LoadedProfile | undefined; hostUpdatedAt: number; at: number; text: string }>();
  private readonly now: () => number;

  constructor(private readonly d: ProvisionDeps) { this.now = d.now ?? Date.now; }

  get baseUrl(): string { return this.d.baseUrl; }

  learnClient(ip: string, mac: Mac): void {
    if (this.ipToMac.size > 65536) this.ipToMac.clear(); // bounded: a flood of fake clients cannot grow it forever
    this.ipToMac.set(ip, mac);
  }
  macForIp(ip: string): Mac | undefined {
    const known = this.ipToMac.get(ip) ?? this.d.hosts.getByIp(ip)?.mac;
    if (known || !this.d.neighbor) return known;
    // Misses are remembered for a few seconds: a stranger's requests must not each read /proc/net/arp.
    const missUntil = this.neighborMisses.get(ip);
    if (missUntil !== undefined && missUntil > this.now()) return undefined;
    const found = this.d.neighbor(ip);
    if (found) { this.learnClient(ip, found); this.neighborMisses.delete(ip); }
    else {
      if (this.neighborMisses.size > 65536) this.neighborMisses.clear();
      this.neighborMisses.set(ip, this.now() + 5000);
    }
    return found;
  }

  state(mac: Mac): HostState { return stateOf(this.d.builds.latest(mac), this.now()); }

  /** For the boot decision (DHCP): is the host known, is it in build, which loader does its profile want. */
  bootState(mac: Mac): HostBootState | undefined {
    const host = this.d.hosts.get(mac);
    if (!host) return undefined;
    // The host's own parameters count here too ("boot.loader": "ipxe" on one machine).
    const profile = this.profileFor(host);
    return { inBuild: this.state(mac) === 'build', loader: profile.ok ? profile.value.boot.loader : 'native' };
  }

  event(e: Omit<HostEvent, 'id' | 'at'>): void {
    try { this.d.events.append(e); } catch (err) { this.d.log.error({ mac: e.mac, err: (err as Error).message }, 'could not record event'); }
  }

  profileFor(host: Host): Outcome<Profile> {
    const loaded = this.d.profiles.get(host.profile);
    if (!loaded) return { ok: false, status: 409, message: `host ${host.hostname} uses profile "${host.profile}", which is not loaded (missing or broken: see GET /api/profiles)` };
    const r = applyHostParams(loaded, host.params, host.hostname);
    if (!r.ok) return { ok: false, status: 409, message: r.errors.join('; ') };
    const { image, ...rest } = r.profile;
    if (typeof image !== 'string') return { ok: true, value: { ...rest, image } };
    const files = this.d.images?.resolve(image);
    if (!files) return { ok: false, status: 409, message: `profile ${host.profile} uses image "${image}", which is not imported: run rackboot image import ISO --name ${image}, or see rackboot image list` };
    return { ok: true, value: { ...rest, image: files, imageName: image } };
  }

  startBuild(mac: Mac, actor: string): Outcome<BuildStarted> {
    const host = this.d.hosts.get(mac);
    if (!host) return { ok: false, status: 404, message: `no host with MAC ${mac}: add it first (POST /api/hosts)` };
    const profile = this.profileFor(host);
    if (!profile.ok) return profile;
    // Render once now so a host whose kickstart cannot be rendered never enters build.
    const { build, token } = this.d.builds.start(mac, this.d.tokenTtlMs);
    const ctx = this.context(host, profile.value, build, token);
    const probe = this.d.renderer.kickstart(ctx);
    if (!probe.ok) {
      this.d.builds.cancel(mac);
      return { ok: false, status: 409, message: probe.error };
    }
    this.d.audit.record(actor, 'build.start', mac, { buildId: build.id, profile: host.profile });
    this.event({ mac, buildId: build.id, type: 'build.start', detail: { actor, profile: host.profile, expiresAt: new Date(build.expiresAt).toISOString() } });
    this.d.log.info({ mac, buildId: build.id, tokenPrefix: tokenHint(token) }, 'build started');
    const urls = buildUrls(ctx);
    return { ok: true, value: { token, kickstartUrl: urls.kickstart, builtUrl: urls.built, failedUrl: urls.failed, eventsUrl: urls.events, expiresAt: new Date(build.expiresAt).toISOString(), buildId: build.id } };
  }

  cancelBuild(mac: Mac, actor: string): Outcome<Build> {
    const b = this.d.builds.cancel(mac);
    if (!b) return { ok: false, status: 409, message: `host ${mac} has no build in progress` };
    this.d.audit.record(actor, 'build.cancel', mac, { buildId: b.id });
    this.event({ mac, buildId: b.id, type: 'build.cancel', detail: { actor } });
    return { ok: true, value: b };
  }

  private context(host: Host, profile: Profile, build: Build, token: string): BuildContext {
    return { host, profileName: host.profile, profile, buildId: build.id, token, baseUrl: this.d.baseUrl };
  }

  /** The boot config for a host: install while its build is live, local boot otherwise. Never an install by default. */
  bootConfig(kind: BootConfigKind, host: Host | undefined, clientIp: string, via: string): string {
    if (!host) return this.d.renderer.localConfig(kind, 'unknown machine: booting the local disk');
    const build = this.d.builds.latest(host.mac);
    const state = stateOf(build, this.now());
    let text: string;
    let status: string;
    if (state === 'build' && build) {
      const profile = this.profileFor(host);
      const rendered = profile.ok ? this.d.renderer.installConfig(kind, this.context(host, profile.value, build, this.d.builds.tokenOf(build))) : { ok: false as const, error: profile.message };
      if (rendered.ok) { text = rendered.text; status = 'install'; }
      else {
        // A broken profile must not leave a machine looping in PXE: boot local, and say why on the timeline.
        text = this.d.renderer.localConfig(kind, `cannot render the install config: ${rendered.error}`);
        status = 'error';
        this.d.log.error({ mac: host.mac, buildId: build.id }, rendered.error);
      }
    } else {
      text = this.d.renderer.localConfig(kind, `${host.hostname} is not in build (state ${state}): booting the local disk`);
      status = state === 'expired' ? 'local (build token expired)' : 'local';
    }
    this.event({ mac: host.mac, buildId: build?.id, type: `${kind}.config`, clientIp, status, bytes: Buffer.byteLength(text), detail: { via } });
    return text;
  }

  /** A per-host config file asked for by name (pxelinux.cfg/..., grub.cfg-...); undefined makes the loader try its next name. */
  configFile(req: ConfigRequest, clientIp: string, via: string): string | undefined {
    const key = req.key;
    let host: Host | undefined;
    if (key.kind === 'mac') host = this.d.hosts.get(key.mac);
    else if (key.kind === 'uuid') host = this.d.hosts.getByUuid(key.uuid);
    else if (key.kind === 'ip') {
      const byIp = this.d.hosts.getByIp(clientIp);
      host = byIp && ipToHex(clientIp) === key.hex ? byIp : undefined;
    }
    if (key.kind === 'default') return this.bootConfig(req.loader, undefined, clientIp, via);
    if (!host) return undefined;
    this.learnClient(clientIp, host.mac);
    return this.bootConfig(req.loader, host, clientIp, via);
  }

  kickstart(token: string, clientIp: string): Outcome<string> {
    const check = this.d.builds.checkLive(token);
    if (!check.ok) {
      if (check.build) {
        this.event({ mac: check.build.mac, buildId: check.build.id, type: 'kickstart.refused', clientIp, status: check.code, detail: { reason: check.message } });
        this.d.log.warn({ mac: check.build.mac, buildId: check.build.id, tokenPrefix: tokenHint(token), clientIp }, `kickstart refused: ${check.message}`);
        return { ok: false, status: 410, message: check.code === 'expired' ? `this build's token expired: start a new build for ${check.build.mac}` : `this build is no longer live (${check.message}): start a new build` };
      }
      this.d.log.info({ tokenPrefix: tokenHint(token), clientIp }, 'kickstart for an unknown token');
      return { ok: false, status: 404, message: 'unknown token' };
    }
    const build = check.build;
    const host = this.d.hosts.get(build.mac);
    if (!host) return { ok: false, status: 410, message: 'the host of this build was deleted' };
    const rendered = this.renderKickstartCached(host, build, token);
    if (!rendered.ok) {
      this.event({ mac: build.mac, buildId: build.id, type: 'kickstart.error', clientIp, status: 'error', detail: { reason: rendered.error } });
      return { ok: false, status: 500, message: `cannot render the kickstart: ${rendered.error}` };
    }
    if (build.ksFetchedAt === undefined) this.d.builds.markKickstartFetched(build.id, clientIp);
    this.learnClient(clientIp, build.mac);
    this.event({ mac: build.mac, buildId: build.id, type: 'kickstart.fetched', clientIp, status: '200', bytes: Buffer.byteLength(rendered.text) });
    return { ok: true, value: rendered.text };
  }

  /**
   * Anaconda fetches the kickstart more than once (and a rack fetches 200 at once): reuse the text while
   * the profile object (swapped on every reload), the host record and the build are the same, for a minute.
   */
  private renderKickstartCached(host: Host, build: Build, token: string): { ok: true; text: string } | { ok: false; error: string } {
    const loaded = this.d.profiles.get(host.profile);
    const hit = this.kickstartCache.get(build.id);
    if (hit && hit.loaded === loaded && hit.hostUpdatedAt === host.updatedAt && this.now() - hit.at < 60_000) return { ok: true, text: hit.text };
    const profile = this.profileFor(host);
    const rendered = profile.ok ? this.d.renderer.kickstart(this.context(host, profile.value, build, token)) : { ok: false as const, error: profile.message };
    if (rendered.ok) {
      if (this.kickstartCache.size >= 4096) this.kickstartCache.clear();
      this.kickstartCache.set(build.id, { loaded, hostUpdatedAt: host.updatedAt, at: this.now(), text: rendered.text });
    }
    return rendered;
  }

  callback(token: string, outcome: 'built' | 'failed', clientIp: string, log?: string): Outcome<Build> {
    const r = this.d.builds.close(token, outcome, log);
    if (!r.ok) {
      if (r.build) this.event({ mac: r.build.mac, buildId: r.build.id, type: `${outcome}.refused`, clientIp, status: r.code, detail: { reason: r.message } });
      const status = r.code === 'unknown' ? 404 : r.code === 'expired' ? 410 : 409;
      return { ok: false, status, message: r.message };
    }
    if (r.changed) {
      const tail = outcome === 'failed' ? this.failureTail(r.build.id) : undefined;
      this.event({ mac: r.build.mac, buildId: r.build.id, type: `build.${outcome}`, clientIp, status: outcome, bytes: log === undefined ? undefined : Buffer.byteLength(log), detail: tail?.length ? { syslogTail: tail } : undefined });
      this.d.log.info({ mac: r.build.mac, buildId: r.build.id }, `build ${outcome}`);
    }
    return { ok: true, value: r.build };
  }

  private failureTail(buildId: number): string[] | undefined {
    try { return this.d.failureTail?.(buildId); } catch (err) { this.d.log.warn({ buildId, err: (err as Error).message }, 'could not read the installer log tail'); return undefined; }
  }

  progress(token: string, step: string, clientIp: string): Outcome<Build> {
    const r = this.d.builds.checkCallback(token);
    if (!r.ok) return { ok: false, status: r.code === 'unknown' ? 404 : 410, message: r.message };
    this.event({ mac: r.build.mac, buildId: r.build.id, type: 'progress', clientIp, status: step });
    return { ok: true, value: r.build };
  }

  /** What a person or script sees of a host. */
  view(mac: Mac) {
    const host = this.d.hosts.get(mac);
    if (!host) return undefined;
    const build = this.d.builds.latest(mac);
    return {
      ...host,
      state: stateOf(build, this.now()),
      build: build && { id: build.id, status: build.status, tokenPrefix: build.tokenPrefix, createdAt: iso(build.createdAt), expiresAt: iso(build.expiresAt),
        kickstartFetchedAt: iso(build.ksFetchedAt), kickstartFetchedFrom: build.ksFetchedFrom, finishedAt: iso(build.finishedAt), failureLog: build.failureLog },
      events: this.d.events.timeline(mac).map((e) => ({ ...e, at: iso(e.at) })),
    };
  }

  /** The files as they would be served right now, for `rackboot render` and the host page. */
  preview(mac: Mac, kind: 'kickstart' | BootConfigKind, opts: { maskSecrets: boolean }): Outcome<string> {
    const host = this.d.hosts.get(mac);
    if (!host) return { ok: false, status: 404, message: `no host with MAC ${mac}` };
    const build = this.d.builds.latest(mac);
    const live = build && stateOf(build, this.now()) === 'build' ? build : undefined;
    if (kind !== 'kickstart' && !live) return { ok: true, value: this.d.renderer.localConfig(kind, `${host.hostname} is not in build: booting the local disk`) };
    const profile = this.profileFor(host);
    if (!profile.ok) return profile;
    const token = live ? this.d.builds.tokenOf(live) : 'NO-BUILD-IN-PROGRESS';
    const ctx = this.context(host, profile.value, live ?? ({ id: 0 } as Build), opts.maskSecrets ? 'TOKEN' : token);
    const r = kind === 'kickstart' ? this.d.renderer.kickstart(ctx) : this.d.renderer.installConfig(kind, ctx);
    if (!r.ok) return { ok: false, status: 409, message: r.error };
    return { ok: true, value: opts.maskSecrets ? maskSecrets(r.text, profile.value) : r.text };
  }
}

function iso(ms: number | undefined): string | undefined { return ms === undefined ? undefined : new Date(ms).toISOString(); }

/** Replaces the root hash and the activation key with a marker, for pages that show a kickstart. */
export function maskSecrets(text: string, profile: Profile): string {
  let out = text.replaceAll(profile.rootPassword, '********');
  if (profile.satellite) out = out.replaceAll(`--activationkey="${profile.satellite.activationKey}"`, '--activationkey="********"');
  return out;
}
