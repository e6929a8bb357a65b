// The build lifecycle and everything a booting machine asks for, on top of the store, the profiles
// and the renderer. HTTP, TFTP and DHCP are thin adapters over this.
import type { Logger } from './log.ts';
import { tokenHint } from './log.ts';
import type { Mac } from './net/mac.ts';
import { ipToHex } from './net/mac.ts';
import type { Host } from './store/hosts.ts';
import type { Build, HostState } from './store/builds.ts';
import { stateOf } from './store/builds.ts';
import type { HostEvent } from './store/events.ts';
import type { BuildRepo } from './store/repo/builds.ts';
import type { HostRepo } from './store/repo/hosts.ts';
import type { EventRepo } from './store/repo/events.ts';
import type { AuditRepo } from './store/repo/small.ts';
import type { StoreView } from './store/view.ts';
import type { LoadedProfile } from './profiles/load.ts';
import { applyHostParams } from './profiles/load.ts';
import type { ImageFiles, ResolvedProfile as Profile } from './profiles/schema.ts';
import type { BootConfigKind, BuildContext, Renderer } from './render/render.ts';
import { buildUrls } from './render/render.ts';
import { shellWord } from './render/escape.ts';
import type { ConfigRequest } from './boot/paths.ts';
import type { HostBootState } from './boot/decide.ts';
import { servesSite } from './hosts/site.ts';
import { ClientIdentifier, describeIdentity, type ClientIdentity } from './boot/identify.ts';
import type { UefiChainResolver } from './images/uefi-chain.ts';
import { currentStuck, type StuckView } from './rollout/stuck.ts';
import type { DiscoveredMachine } from './dhcp/engine.ts';

export interface ProvisionDeps {
  /** Hosts and their latest builds in memory (src/store/view.ts): the boot paths read these, never the database. */
  view: StoreView;
  /** The database's hosts, for what the view may not have heard of yet (a host just created on another node). */
  hosts: Pick<HostRepo, 'get'>;
  builds: BuildRepo;
  events: EventRepo;
  audit: AuditRepo;
  profiles: { get(name: string): LoadedProfile | undefined };
  renderer: Renderer;
  /** Imported images by name (src/images); a profile may say `image: NAME`. */
  images?: { resolve(name: string): ImageFiles | undefined };
  /** Our DHCP server's live bound lease on an address; tests may leave it out. */
  lease?: (ip: string) => Mac | undefined;
  /** The kernel's neighbour (ARP) table; tests may leave it out. */
  neighbor?: (ip: string) => Mac | undefined;
  log: Logger;
  baseUrl: string;
  tokenTtlMs: number;
  now?: () => number;
  /** The installer's last log lines (syslog) of a build, put into its build.failed event. */
  failureTail?: (buildId: number) => Promise<string[]>;
  /** Which UEFI chain (image's own shim/GRUB or the synced ones) a profile's hosts boot (src/images/uefi-chain.ts). */
  uefiChain?: UefiChainResolver;
  /** This node's site: DHCP, boot configs and kickstarts only for its hosts and hosts of no site (src/hosts/site.ts). */
  site?: string;
  /** A machine that asked for a boot file by its MAC (or from an address tied to a MAC) and is not a host. */
  discovered?: (m: DiscoveredMachine) => void;
}

/** What a loader's request says of the firmware: pxelinux is BIOS (arch 0), our GRUB is x86-64 UEFI (arch 7). */
const LOADER_ARCH = { pxelinux: 0, grub: 7 } as const;

export type Outcome<T> = { ok: true; value: T } | { ok: false; status: number; message: string };

export interface BuildStarted {
  token: string;
  kickstartUrl: string;
  builtUrl: string;
  failedUrl: string;
  eventsUrl: string;
  expiresAt: string;
  buildId: number;
}

/** One config.refused event per (host, requester, name) in this window. */
export const REFUSAL_EVENT_WINDOW_MS = 30_000;

export class Provisioner {
  /** Which host a client address is (DHCP lease, learnt address, neighbour table, static IP): TFTP and HTTP carry only an address. */
  private readonly identity: ClientIdentifier;
  /** When each (host, requester, name) refusal was last put on the timeline: a looping stranger makes one event per window, not one per request. */
  private readonly refusalsNoted = new Map<string, number>();
  private readonly kickstartCache = new Map<
    number,
    { loaded: LoadedProfile | undefined; hostUpdatedAt: number; at: number; text: string }
  >();
  private readonly now: () => number;

  constructor(private readonly d: ProvisionDeps) {
    this.now = d.now ?? Date.now;
    this.identity = new ClientIdentifier(
      { lease: d.lease, neighbour: d.neighbor, staticHost: (ip) => d.view.hostByIp(ip)?.mac },
      this.now,
    );
  }

  get baseUrl(): string {
    return this.d.baseUrl;
  }

  /** An address -> MAC pair from DHCP or a verified kickstart fetch; never from a requested file name, which anyone can send. */
  learnClient(ip: string, mac: Mac): void {
    this.identity.learn(ip, mac);
  }
  /** The address each host was last learnt at (DHCP, verified kickstart fetch), for lists. */
  learntAddresses(): Map<Mac, string> {
    return this.identity.addresses();
  }
  identify(ip: string): ClientIdentity {
    return this.identity.resolve(ip);
  }
  macForIp(ip: string): Mac | undefined {
    const who = this.identity.resolve(ip);
    return who.known ? who.mac : undefined;
  }

  state(mac: Mac): HostState {
    return stateOf(this.d.view.latestBuild(mac), this.now());
  }

  /** For the boot decision (DHCP): is the host known, is it in build, which loader does its profile want. */
  bootState(mac: Mac): HostBootState | undefined {
    const host = this.ourHost(mac);
    if (!host) return undefined;
    // The host's own parameters count here too ("boot.loader": "ipxe" on one machine).
    const profile = this.profileFor(host);
    const chain = profile.ok ? this.uefiChainOf(profile.value) : undefined;
    return {
      inBuild: this.state(mac) === 'build',
      loader: profile.ok ? profile.value.boot.loader : 'native',
      ...(chain ? { uefi: { bootFile: chain.bootFile, http: chain.http, reason: chain.reason } } : {}),
    };
  }

  private uefiChainOf(profile: Profile) {
    try {
      return this.d.uefiChain?.(profile.imageName, profile.boot.uefiLoaders);
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message }, 'cannot tell the UEFI chain: using loaders.uefi');
      return undefined;
    }
  }

  /** The host with this MAC when this node's site serves it; a host of another site is a stranger to the boot paths here. */
  /** Machines that PXE-boot through TFTP or HTTP without being hosts (in proxy mode too) join the discovered list. */
  private sighted(m: DiscoveredMachine): void {
    if (this.d.discovered && !this.d.view.host(m.mac)) this.d.discovered(m);
  }

  ourHost(mac: Mac): Host | undefined {
    const host = this.d.view.host(mac);
    return host && servesSite(this.d.site, host.site) ? host : undefined;
  }

  event(e: Omit<HostEvent, 'id' | 'at'>): void {
    try {
      this.d.events.append(e);
    } catch (err) {
      this.d.log.error({ mac: e.mac, err: (err as Error).message }, 'could not record event');
    }
  }

  /** The view's host, or the database's when the view has not heard of it yet (just created on another node). */
  private async freshHost(mac: Mac): Promise<Host | undefined> {
    return this.d.view.host(mac) ?? (await this.d.hosts.get(mac));
  }

  profileFor(host: Host): Outcome<Profile> {
    const loaded = this.d.profiles.get(host.profile);
    if (!loaded)
      return {
        ok: false,
        status: 409,
        message: `host ${host.hostname} uses profile "${host.profile}", which is not loaded (missing or broken: see GET /api/profiles)`,
      };
    const r = applyHostParams(loaded, host.params, host.hostname);
    if (!r.ok) return { ok: false, status: 409, message: r.errors.join('; ') };
    const { image, ...rest } = r.profile;
    if (typeof image !== 'string') return { ok: true, value: { ...rest, image } };
    const files = this.d.images?.resolve(image);
    if (!files)
      return {
        ok: false,
        status: 409,
        message: `profile ${host.profile} uses image "${image}", which is not imported: run rackboot image import ISO --name ${image}, or see rackboot image list`,
      };
    return { ok: true, value: { ...rest, image: files, imageName: image } };
  }

  async startBuild(mac: Mac, actor: string): Promise<Outcome<BuildStarted>> {
    const host = await this.freshHost(mac);
    if (!host) return { ok: false, status: 404, message: `no host with MAC ${mac}: add it first (POST /api/hosts)` };
    const profile = this.profileFor(host);
    if (!profile.ok) return profile;
    // Render once now so a host whose kickstart cannot be rendered never enters build.
    const { build, token } = await this.d.builds.start(mac, this.d.tokenTtlMs);
    const ctx = this.context(host, profile.value, build, token);
    const probe = this.d.renderer.kickstart(ctx);
    if (!probe.ok) {
      await this.d.builds.cancel(mac);
      return { ok: false, status: 409, message: probe.error };
    }
    await this.d.audit.record(actor, 'build.start', mac, { buildId: build.id, profile: host.profile });
    this.event({
      mac,
      buildId: build.id,
      type: 'build.start',
      detail: { actor, profile: host.profile, expiresAt: new Date(build.expiresAt).toISOString() },
    });
    this.d.log.info({ mac, buildId: build.id, tokenPrefix: tokenHint(token) }, 'build started');
    const urls = buildUrls(ctx);
    return {
      ok: true,
      value: {
        token,
        kickstartUrl: urls.kickstart,
        builtUrl: urls.built,
        failedUrl: urls.failed,
        eventsUrl: urls.events,
        expiresAt: new Date(build.expiresAt).toISOString(),
        buildId: build.id,
      },
    };
  }

  async cancelBuild(mac: Mac, actor: string): Promise<Outcome<Build>> {
    const b = await this.d.builds.cancel(mac);
    if (!b) return { ok: false, status: 409, message: `host ${mac} has no build in progress` };
    await this.d.audit.record(actor, 'build.cancel', mac, { buildId: b.id });
    this.event({ mac, buildId: b.id, type: 'build.cancel', detail: { actor } });
    return { ok: true, value: b };
  }

  private context(host: Host, profile: Profile, build: Build, token: string): BuildContext {
    const grubKernelCommand = this.uefiChainOf(profile)?.grubKernelCommand;
    return {
      host,
      profileName: host.profile,
      profile,
      buildId: build.id,
      token,
      baseUrl: this.d.baseUrl,
      ...(grubKernelCommand ? { grubKernelCommand } : {}),
    };
  }

  /**
   * The boot config for a host: install while its build is live and the requester is that host, local
   * boot otherwise. `name` is the file or URL asked for; `generic` says it was a default name (grub.cfg,
   * pxelinux.cfg/default, /boot/ipxe) answered for the host the address resolved to.
   */
  bootConfig(
    kind: BootConfigKind,
    host: Host | undefined,
    clientIp: string,
    via: string,
    opts: { name?: string; generic?: boolean; who?: ClientIdentity } = {},
  ): string {
    const who = opts.who ?? this.identify(clientIp);
    const name = shortName(opts.name);
    if (!host) return this.d.renderer.defaultConfig(kind, 'unknown machine: booting the local disk');
    const build = this.d.view.latestBuild(host.mac);
    const state = stateOf(build, this.now());
    const resolvedBy = who.known && who.mac === host.mac ? who.via : undefined;
    let text: string;
    let status: string;
    if (state === 'build' && build && !resolvedBy) {
      // DESIGN, Trust: the token goes only to the machine tied to the host. A stranger asking for this host's file gets no token.
      const reason = describeIdentity(clientIp, who);
      text = this.d.renderer.localConfig(
        kind,
        `requester ${clientIp} is not tied to this host (see its timeline): booting the local disk`,
      );
      if (this.firstRefusal(`${host.mac}|${clientIp}|${kind}|${name}`)) {
        this.event({
          mac: host.mac,
          buildId: build.id,
          type: 'config.refused',
          clientIp,
          status: 'requester',
          detail: { kind, via, name, reason },
        });
        this.d.log.warn(
          { mac: host.mac, buildId: build.id, clientIp, name },
          `${kind} install config withheld: ${reason}`,
        );
      }
      return text;
    }
    const token = build && this.d.view.tokenOf(build);
    if (state === 'build' && build) {
      const profile = this.profileFor(host);
      const rendered = !token
        ? { ok: false as const, error: `build ${build.id}'s token is not in this node's view yet` }
        : profile.ok
          ? this.d.renderer.installConfig(kind, this.context(host, profile.value, build, token))
          : { ok: false as const, error: profile.message };
      if (rendered.ok) {
        text = rendered.text;
        status = 'install';
      } else {
        // A broken profile must not leave a machine looping in PXE: boot local, and say why on the timeline.
        text = this.d.renderer.localConfig(kind, `cannot render the install config: ${rendered.error}`);
        status = 'error';
        this.d.log.error({ mac: host.mac, buildId: build.id }, rendered.error);
      }
    } else {
      text = this.d.renderer.localConfig(
        kind,
        `${host.hostname} is not in build (state ${state}): booting the local disk`,
      );
      status = state === 'expired' ? 'local (build token expired)' : 'local';
    }
    if (opts.generic)
      this.d.log.info(
        { mac: host.mac, clientIp, name, resolvedBy, status },
        `default name answered with ${host.hostname}'s ${kind} config`,
      );
    this.event({
      mac: host.mac,
      buildId: build?.id,
      type: `${kind}.config`,
      clientIp,
      status,
      bytes: Buffer.byteLength(text),
      detail: { via, name, resolvedBy },
    });
    return text;
  }

  /** The iPXE script at /boot/ipxe/<mac>, or /boot/ipxe for whoever asks (no MAC: the host the address resolves to). */
  ipxeScript(mac: Mac | undefined, clientIp: string, name: string): string {
    const who = this.identify(clientIp);
    const target = mac ?? (who.known ? who.mac : undefined);
    if (target) this.sighted({ mac: target, ip: clientIp, ipxe: true });
    return this.bootConfig('ipxe', target && this.ourHost(target), clientIp, 'http', {
      name,
      generic: mac === undefined,
      who,
    });
  }

  /** A per-host config file asked for by name (pxelinux.cfg/..., grub.cfg-...); undefined makes the loader try its next name. */
  configFile(req: ConfigRequest, clientIp: string, via: string): string | undefined {
    const key = req.key;
    const who = this.identify(clientIp);
    const requester = who.known ? this.ourHost(who.mac) : undefined;
    const opts = { name: req.name, who };
    const sighted = key.kind === 'mac' ? key.mac : who.known ? who.mac : undefined;
    if (sighted) this.sighted({ mac: sighted, ip: clientIp, ipxe: false, arch: LOADER_ARCH[req.loader] });
    if (key.kind === 'default') {
      if (requester) return this.bootConfig(req.loader, requester, clientIp, via, { ...opts, generic: true });
      this.d.log.debug(
        { clientIp, name: shortName(req.name), reason: who.known ? `${who.mac} is not a host` : who.reason },
        'default config for an unresolved client',
      );
      return this.d.renderer.defaultConfig(
        req.loader,
        who.known
          ? 'unknown machine: booting the local disk'
          : 'this address is not tied to a host: booting the local disk',
      );
    }
    if (key.kind === 'ip') {
      // pxelinux/GRUB ask for their own address in hex: it is the requester's config or nothing.
      return requester && ipToHex(clientIp) === key.hex
        ? this.bootConfig(req.loader, requester, clientIp, via, opts)
        : undefined;
    }
    if (key.kind === 'mac') {
      const host = this.ourHost(key.mac);
      return host && this.bootConfig(req.loader, host, clientIp, via, opts);
    }
    // SMBIOS UUIDs need not be unique (cloned VMs, vendor placeholders): a UUID name is answered only for a
    // unique one whose requester is that host; otherwise pxelinux goes on to its 01-<mac> name.
    const byUuid = this.d.view.hostsByUuid(key.uuid).filter((h) => servesSite(this.d.site, h.site));
    if (byUuid.length === 1 && requester?.mac === byUuid[0].mac)
      return this.bootConfig(req.loader, byUuid[0], clientIp, via, opts);
    const reason =
      byUuid.length > 1
        ? `UUID ${key.uuid} belongs to ${byUuid.length} hosts (${byUuid.map((h) => h.hostname).join(', ')}): set unique UUIDs`
        : describeIdentity(clientIp, who);
    for (const h of byUuid) {
      const b = this.d.view.latestBuild(h.mac);
      if (b && stateOf(b, this.now()) === 'build' && this.firstRefusal(`${h.mac}|${clientIp}|uuid|${key.uuid}`))
        this.event({
          mac: h.mac,
          buildId: b.id,
          type: 'config.refused',
          clientIp,
          status: 'uuid',
          detail: { kind: req.loader, via, name: shortName(req.name), reason },
        });
    }
    return undefined;
  }

  private firstRefusal(key: string): boolean {
    const t = this.now();
    const last = this.refusalsNoted.get(key);
    if (last !== undefined && t - last < REFUSAL_EVENT_WINDOW_MS) return false;
    if (this.refusalsNoted.size >= 4096) this.refusalsNoted.clear();
    this.refusalsNoted.set(key, t);
    return true;
  }

  /**
   * GET /ks/<token>. `sentMacs` are the MACs of Anaconda's inst.ks.sendmac headers (X-RHN-Provisioning-MAC-n).
   * The request must come from the host: one of those MACs is the build's, or the address resolves to it;
   * once fetched, only the address that fetched it may fetch it again.
   */
  async kickstart(token: string, clientIp: string, sentMacs: readonly Mac[] = []): Promise<Outcome<string>> {
    // A live build this node's view knows answers without a query; anything else asks the database.
    const check = this.liveInView(token) ?? (await this.d.builds.checkLive(token));
    if (!check.ok) {
      if (check.build) {
        this.event({
          mac: check.build.mac,
          buildId: check.build.id,
          type: 'kickstart.refused',
          clientIp,
          status: check.code,
          detail: { reason: check.message },
        });
        this.d.log.warn(
          { mac: check.build.mac, buildId: check.build.id, tokenPrefix: tokenHint(token), clientIp },
          `kickstart refused: ${check.message}`,
        );
        return {
          ok: false,
          status: 410,
          message:
            check.code === 'expired'
              ? `this build's token expired: start a new build for ${check.build.mac}`
              : `this build is no longer live (${check.message}): start a new build`,
        };
      }
      this.d.log.info({ tokenPrefix: tokenHint(token), clientIp }, 'kickstart for an unknown token');
      return { ok: false, status: 404, message: 'unknown token' };
    }
    const build = check.build;
    const host = await this.freshHost(build.mac);
    if (!host) return { ok: false, status: 410, message: 'the host of this build was deleted' };
    if (!servesSite(this.d.site, host.site)) {
      this.d.log.info(
        { mac: build.mac, buildId: build.id, site: host.site, nodeSite: this.d.site, clientIp },
        'kickstart refused: the host belongs to another site',
      );
      return {
        ok: false,
        status: 421,
        message: `host ${host.hostname} belongs to site ${host.site}; this node serves site ${this.d.site}: fetch the kickstart from a node of site ${host.site}`,
      };
    }
    const requester = this.kickstartRequester(build, clientIp, sentMacs);
    if (!requester.ok) {
      this.event({
        mac: build.mac,
        buildId: build.id,
        type: 'kickstart.refused',
        clientIp,
        status: 'requester',
        detail: { reason: requester.reason },
      });
      this.d.log.warn(
        { mac: build.mac, buildId: build.id, tokenPrefix: tokenHint(token), clientIp },
        `kickstart refused: ${requester.reason}`,
      );
      return { ok: false, status: 403, message: `kickstart refused: ${requester.reason}` };
    }
    const rendered = this.renderKickstartCached(host, build, token);
    if (!rendered.ok) {
      this.event({
        mac: build.mac,
        buildId: build.id,
        type: 'kickstart.error',
        clientIp,
        status: 'error',
        detail: { reason: rendered.error },
      });
      return { ok: false, status: 500, message: `cannot render the kickstart: ${rendered.error}` };
    }
    if (build.ksFetchedAt === undefined) await this.d.builds.markKickstartFetched(build.id, clientIp, build.mac);
    this.learnClient(clientIp, build.mac);
    this.event({
      mac: build.mac,
      buildId: build.id,
      type: 'kickstart.fetched',
      clientIp,
      status: '200',
      bytes: Buffer.byteLength(rendered.text),
      detail: { matchedBy: requester.matchedBy },
    });
    return { ok: true, value: rendered.text };
  }

  private liveInView(token: string): { ok: true; build: Build } | undefined {
    const b = this.d.view.pendingBuildOfToken(token);
    return b && b.expiresAt > this.now() ? { ok: true, build: b } : undefined;
  }

  private kickstartRequester(
    build: Build,
    clientIp: string,
    sentMacs: readonly Mac[],
  ): { ok: true; matchedBy: string } | { ok: false; reason: string } {
    if (build.ksFetchedFrom !== undefined) {
      return build.ksFetchedFrom === clientIp
        ? { ok: true, matchedBy: 'first-fetch address' }
        : {
            ok: false,
            reason: `build ${build.id}'s kickstart was fetched from ${build.ksFetchedFrom}; only that address may fetch it again (start a new build if the host moved)`,
          };
    }
    if (sentMacs.includes(build.mac)) return { ok: true, matchedBy: 'sendmac' };
    const who = this.identify(clientIp);
    if (who.known && who.mac === build.mac) return { ok: true, matchedBy: who.via };
    const sent = sentMacs.length
      ? `sent X-RHN-Provisioning-MAC ${sentMacs.slice(0, 8).join(', ')}`
      : 'sent no X-RHN-Provisioning-MAC header (inst.ks.sendmac)';
    return { ok: false, reason: `${describeIdentity(clientIp, who)} and ${sent}, not ${build.mac}` };
  }

  /**
   * Who may speak for a build (built, failed, progress, syslog): once the kickstart was fetched, only that
   * address; before, an address that resolves to the host. Anyone else holding the token is refused.
   */
  speaksForBuild(build: Build, clientIp: string): { ok: true } | { ok: false; reason: string } {
    if (build.ksFetchedFrom !== undefined) {
      return build.ksFetchedFrom === clientIp
        ? { ok: true }
        : {
            ok: false,
            reason: `requester ${clientIp} is not ${build.ksFetchedFrom}, the address that fetched build ${build.id}'s kickstart`,
          };
    }
    const who = this.identify(clientIp);
    return who.known && who.mac === build.mac
      ? { ok: true }
      : {
          ok: false,
          reason: `${describeIdentity(clientIp, who)}, not ${build.mac}, and build ${build.id}'s kickstart was not fetched yet`,
        };
  }

  /** The build a syslog line from `ip` belongs to: the host's latest build, only when `ip` speaks for it. */
  syslogSource(ip: string): { mac: Mac; buildId: number } | undefined {
    const mac = this.macForIp(ip);
    const b = mac && this.d.view.latestBuild(mac);
    return mac && b && this.speaksForBuild(b, ip).ok ? { mac, buildId: b.id } : undefined;
  }

  /**
   * Anaconda fetches the kickstart more than once (and a rack fetches 200 at once): reuse the text while
   * the profile object (swapped on every reload), the host record and the build are the same, for a minute.
   */
  private renderKickstartCached(
    host: Host,
    build: Build,
    token: string,
  ): { ok: true; text: string } | { ok: false; error: string } {
    const loaded = this.d.profiles.get(host.profile);
    const hit = this.kickstartCache.get(build.id);
    if (hit && hit.loaded === loaded && hit.hostUpdatedAt === host.updatedAt && this.now() - hit.at < 60_000)
      return { ok: true, text: hit.text };
    const profile = this.profileFor(host);
    const rendered = profile.ok
      ? this.d.renderer.kickstart(this.context(host, profile.value, build, token))
      : { ok: false as const, error: profile.message };
    if (rendered.ok) {
      if (this.kickstartCache.size >= 4096) this.kickstartCache.clear();
      this.kickstartCache.set(build.id, { loaded, hostUpdatedAt: host.updatedAt, at: this.now(), text: rendered.text });
    }
    return rendered;
  }

  async callback(token: string, outcome: 'built' | 'failed', clientIp: string, log?: string): Promise<Outcome<Build>> {
    const known = await this.d.builds.byToken(token);
    const refused = known && this.refuseStranger(known, `${outcome}.refused`, clientIp);
    if (refused) return refused;
    const r = await this.d.builds.close(token, outcome, log);
    if (!r.ok) {
      if (r.build)
        this.event({
          mac: r.build.mac,
          buildId: r.build.id,
          type: `${outcome}.refused`,
          clientIp,
          status: r.code,
          detail: { reason: r.message },
        });
      const status = r.code === 'unknown' ? 404 : r.code === 'expired' ? 410 : 409;
      return { ok: false, status, message: r.message };
    }
    if (r.changed) {
      const tail = outcome === 'failed' ? await this.failureTail(r.build.id) : undefined;
      this.event({
        mac: r.build.mac,
        buildId: r.build.id,
        type: `build.${outcome}`,
        clientIp,
        status: outcome,
        bytes: log === undefined ? undefined : Buffer.byteLength(log),
        detail: tail?.length ? { syslogTail: tail } : undefined,
      });
      this.d.log.info({ mac: r.build.mac, buildId: r.build.id }, `build ${outcome}`);
    }
    return { ok: true, value: r.build };
  }

  private async failureTail(buildId: number): Promise<string[] | undefined> {
    try {
      return await this.d.failureTail?.(buildId);
    } catch (err) {
      this.d.log.warn({ buildId, err: (err as Error).message }, 'could not read the installer log tail');
      return undefined;
    }
  }

  async progress(token: string, step: string, clientIp: string): Promise<Outcome<Build>> {
    const r = await this.d.builds.checkCallback(token);
    if (!r.ok) return { ok: false, status: r.code === 'unknown' ? 404 : 410, message: r.message };
    const refused = this.refuseStranger(r.build, 'progress.refused', clientIp);
    if (refused) return refused;
    this.event({ mac: r.build.mac, buildId: r.build.id, type: 'progress', clientIp, status: step });
    return { ok: true, value: r.build };
  }

  private refuseStranger(
    build: Build,
    type: string,
    clientIp: string,
  ): { ok: false; status: number; message: string } | undefined {
    const may = this.speaksForBuild(build, clientIp);
    if (may.ok) return undefined;
    this.event({
      mac: build.mac,
      buildId: build.id,
      type,
      clientIp,
      status: 'requester',
      detail: { reason: may.reason },
    });
    this.d.log.warn({ mac: build.mac, buildId: build.id, clientIp }, `${type}: ${may.reason}`);
    return { ok: false, status: 403, message: `refused: ${may.reason}` };
  }

  /** A page of a host's timeline: up to `limit` events after `afterId`, oldest first. */
  eventsAfter(mac: Mac, afterId: number, limit: number): Promise<HostEvent[]> {
    return this.d.events.after(mac, afterId, limit);
  }

  /** What a person or script sees of a host. */
  async view(mac: Mac) {
    // From the database, not the view: what a person or script reads right after a change made elsewhere (the
    // CLI, another node) must already show it; the view may be a poll behind.
    const host = await this.d.hosts.get(mac);
    if (!host) return undefined;
    const build = await this.d.builds.latest(mac);
    const timeline = await this.d.events.timeline(mac);
    const state = stateOf(build, this.now());
    return {
      ...host,
      state,
      /** Set by stuck detection (src/rollout/stuck-watch.ts) while the host is past a stage's time limit; null otherwise. */
      stuck: (state === 'build' && build && this.stuckOf(timeline, build)) || null,
      build: build && {
        id: build.id,
        status: build.status,
        tokenPrefix: build.tokenPrefix,
        createdAt: iso(build.createdAt),
        expiresAt: iso(build.expiresAt),
        kickstartFetchedAt: iso(build.ksFetchedAt),
        kickstartFetchedFrom: build.ksFetchedFrom,
        finishedAt: iso(build.finishedAt),
        failureLog: build.failureLog,
      },
      events: timeline.map((e) => ({ ...e, at: iso(e.at) })),
      rebuildNote: this.rebuildNote(host, timeline),
    };
  }

  /** The stuck mark of the live build (src/rollout/stuck.ts), from its own events. */
  stuckOf(timeline: readonly HostEvent[], build: Build): StuckView | undefined {
    return currentStuck(
      timeline.filter((e) => e.at >= build.createdAt),
      this.now(),
    );
  }

  /** The stuck mark of a host now (its latest events), for lists and rollouts. */
  async stuck(mac: Mac): Promise<StuckView | undefined> {
    const build = this.d.view.latestBuild(mac);
    if (!build || stateOf(build, this.now()) !== 'build') return undefined;
    return this.stuckOf(await this.d.events.timeline(mac, 200), build);
  }

  /**
   * A UEFI install puts the OS first in the firmware's BootOrder; the kickstart's efibootmgr step puts network boot
   * back first unless the profile turned boot.keepNetbootFirst off. Then a rebuild needs someone to change the order.
   */
  private rebuildNote(host: Host, timeline: readonly HostEvent[]): string | undefined {
    const uefi = timeline.some((e) => e.type === 'grub.config');
    const profile = this.profileFor(host);
    if (!uefi || !profile.ok || profile.value.boot.keepNetbootFirst) return undefined;
    return (
      `This UEFI host boots its installed OS first (profile ${host.profile} has boot.keepNetbootFirst off), so a rebuild is not seen ` +
      "by itself: set network boot first in the firmware or use the BMC's one-time PXE boot, or turn boot.keepNetbootFirst on before the next install."
    );
  }

  /** The files as they would be served right now, for `rackboot render` and the host page. */
  async preview(
    mac: Mac,
    kind: 'kickstart' | BootConfigKind,
    opts: { maskSecrets: boolean },
  ): Promise<Outcome<string>> {
    const host = await this.freshHost(mac);
    if (!host) return { ok: false, status: 404, message: `no host with MAC ${mac}` };
    const build = this.d.view.latestBuild(mac);
    const live = build && stateOf(build, this.now()) === 'build' ? build : undefined;
    if (kind !== 'kickstart' && !live)
      return {
        ok: true,
        value: this.d.renderer.localConfig(kind, `${host.hostname} is not in build: booting the local disk`),
      };
    const profile = this.profileFor(host);
    if (!profile.ok) return profile;
    const token = live ? await this.d.builds.tokenOf(live) : 'NO-BUILD-IN-PROGRESS';
    const ctx = this.context(host, profile.value, live ?? ({ id: 0 } as Build), opts.maskSecrets ? 'TOKEN' : token);
    const r = kind === 'kickstart' ? this.d.renderer.kickstart(ctx) : this.d.renderer.installConfig(kind, ctx);
    if (!r.ok) return { ok: false, status: 409, message: r.error };
    return { ok: true, value: opts.maskSecrets ? maskSecrets(r.text, profile.value) : r.text };
  }
}

/** A requested name as the timeline keeps it: a stranger's 16 KB URL must not become a 16 KB event. */
function shortName(name: string | undefined): string | undefined {
  return name && name.length > 200 ? `${name.slice(0, 200)}…` : name;
}

function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

/** Replaces the root hash and the activation key with a marker, for pages that show a kickstart. */
export function maskSecrets(text: string, profile: Profile): string {
  let out = text.replaceAll(profile.rootPassword, '********');
  if (profile.satellite)
    out = out.replaceAll(`--activationkey=${shellWord(profile.satellite.activationKey)}`, "--activationkey='********'");
  return out;
}
