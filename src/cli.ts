// rackboot's commands. Each returns an exit code; only main.ts touches process.exit.
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig, SERVE_FLAGS, type Config, type Flags } from './config.ts';
import { createLogger, silentLogger, type Logger } from './log.ts';
import { openCore, SecretKeyError, startRackboot, type Core } from './serve.ts';
import { secretKeyProblem } from './ops/private-files.ts';
import { parseMac } from './net/mac.ts';
import { formatProfileError } from './profiles/load.ts';
import { formatTemplateReport, templateReport } from './render/usage.ts';
import { formatTemplateError } from './render/template-catalog.ts';
import { hashPassword } from './secrets/sha512crypt.ts';
import { checkRackCsv } from './hosts/csv.ts';
import { guardHostParams } from './hosts/policy.ts';
import { buildReadinessProblems } from './hosts/readiness.ts';
import { doctorCommand, imageCommand, loadersCommand } from './images/commands.ts';
import type { ProgressSink } from './images/progress.ts';
import { usersCommand } from './web/users-cli.ts';
import type { Mac } from './net/mac.ts';
import { rackCommand, rolloutCommand } from './rollout/cli.ts';
import { REMOTE_COMMANDS, REMOTE_USAGE, runRemote } from './cli/remote.ts';
import { powerCommand } from './bmc/cli.ts';
import { backupStore, restoreStoreFile } from './ops/store-backup.ts';

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  readStdin: () => Promise<string>;
  env: NodeJS.ProcessEnv;
  progress?: ProgressSink;
}

const COMMON_OPTIONS = Object.fromEntries(Object.keys(SERVE_FLAGS).map((k) => [k, { type: 'string' as const }]));

const USAGE = `usage: rackboot <command> [flags]

commands:
  serve                         run the DHCP/TFTP/HTTP provisioning server
  render KIND --mac MAC         print what the server would serve now (KIND: kickstart, pxelinux, grub, ipxe)
  lint                          check every profile and host; exit 1 on problems
  hosts list                    list hosts and their state
  hosts import FILE [--dry-run] add a rack of hosts from CSV (mac,hostname,profile,ip,...)
  hosts build MAC               start a build (prints the kickstart and built URLs)
  hosts cancel MAC              cancel a build
  rack build RACK [--power] [--wave N] [--interval S] [--confirm]
                                build every host of a rack; --power: through each host's BMC, network boot once
                                and power on, N hosts a wave (8), S seconds between waves (20); --confirm to
                                rebuild built hosts (their disks are wiped). Carried out by the running serve.
  rack cancel RACK              cancel the rack's builds and rollouts (a cancelled rebuild leaves the host built)
  rollout list | show ID | cancel ID
                                rollouts and each host's step (queued, build-started, boot-set, powered, failed)
  power MAC status|on|off|cycle drive the host's BMC (Redfish or IPMI); prints the power state after
  bmc facts MAC                 what the host's BMC reports: model, serial, power state, NIC MACs
  profiles                      list profiles and load errors
  templates list                list boot, kickstart and snippet templates (shipped or your templatesDir),
                                which profile uses which, and template errors (file:line)
  hash-password                 read a password on stdin, print its SHA-512 crypt hash for rootPassword
  image import ISO [--name N] [--force]
                                import an RHVH ISO: kernel+initrd to the tftp root, the ISO tree and the
                                hypervisor squashfs to the images dir (--force replaces a same-named image)
  image list | image remove NAME
  loaders sync                  copy pxelinux, shim+GRUB and iPXE from distro packages into the tftp root
  doctor                        check ports, loaders, images, the public URL; exit 1 on problems
  backup FILE                   copy the database to FILE while the server runs (SQLite online backup, checked;
                                PostgreSQL: a JSON Lines dump from one snapshot)
  restore FILE [--force]        replace the database with FILE (checked first; refused while serve runs;
                                the replaced one is kept as rackboot.db.before-restore-<time>). With
                                --database postgres://...: a dump or a SQLite backup (moves SQLite to PostgreSQL)
  users add NAME --role admin|tech --password-stdin
                                add a web UI user (the first admin comes from here); also: users list,
                                users disable|enable NAME, users passwd NAME --password-stdin, users role NAME --role R
  users token NAME              make a per-user API token (printed once, the user's role); users tokens NAME,
                                users revoke-token NAME PREFIX

every command takes the settings flags of serve (--config, --data-dir, --profiles-dir, ...); see rackboot serve --help

from another machine, over the API: rackboot --server URL hosts|rack|power|discovered ... (rackboot --server URL --help)`;

function serveHelp(): string {
  return `usage: rackboot serve [flags]\n\n${Object.entries(SERVE_FLAGS)
    .map(([k, v]) => `  --${k} ${v}`)
    .join(
      '\n',
    )}\n\nenvironment: RACKBOOT_ADMIN_TOKEN (API token), RACKBOOT_<SETTING> for most flags (e.g. RACKBOOT_HTTP_PORT)`;
}

/** --server URL, --token-file FILE and --json, wherever they are: they choose the remote CLI. */
function remoteFlags(argv: string[]): { args: string[]; server?: string; tokenFile?: string; json: boolean } {
  const args: string[] = [];
  let server: string | undefined;
  let tokenFile: string | undefined;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const value = () => (eq > 0 && a.startsWith('--') ? a.slice(eq + 1) : argv[++i]);
    if (name === '--server') server = value() ?? '';
    else if (name === '--token-file') tokenFile = value() ?? '';
    else if (a === '--json') json = true;
    else args.push(a);
  }
  return { args, server, tokenFile, json };
}

export async function runCli(argv: string[], io: Io): Promise<number> {
  const remote = remoteFlags(argv);
  const server = remote.server ?? (io.env.RACKBOOT_SERVER || undefined);
  if (server !== undefined) {
    const first = remote.args[0];
    if (
      first &&
      first !== '--help' &&
      first !== '-h' &&
      first !== 'help' &&
      !(REMOTE_COMMANDS as readonly string[]).includes(first)
    ) {
      io.err(`rackboot: "${first}" runs only on the server (without --server / RACKBOOT_SERVER)\n${REMOTE_USAGE}`);
      return 2;
    }
    return runRemote(first === 'help' ? ['--help'] : remote.args, io, {
      server,
      tokenFile: remote.tokenFile,
      json: remote.json,
    });
  }
  if (remote.tokenFile !== undefined || remote.json) {
    io.err('rackboot: --token-file and --json go with --server URL (or RACKBOOT_SERVER): the remote CLI');
    return 2;
  }
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    io.out(USAGE);
    return command ? 0 : 2;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      strict: true,
      options: {
        ...COMMON_OPTIONS,
        help: { type: 'boolean', short: 'h' },
        mac: { type: 'string' },
        'dry-run': { type: 'boolean' },
        'password-stdin': { type: 'boolean' },
        name: { type: 'string' },
        force: { type: 'boolean' },
        role: { type: 'string' },
        power: { type: 'boolean' },
        wave: { type: 'string' },
        interval: { type: 'string' },
        confirm: { type: 'boolean' },
      },
    });
  } catch (err) {
    io.err(`rackboot ${command}: ${(err as Error).message}\n${command === 'serve' ? serveHelp() : USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(command === 'serve' ? serveHelp() : USAGE);
    return 0;
  }
  if (command === 'hash-password') return hashPasswordCommand(io);

  let config: Readonly<Config>;
  try {
    config = loadConfig(values as Flags, io.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`rackboot: ${err.message}`);
      return 2;
    }
    throw err;
  }
  switch (command) {
    case 'serve':
      return serve(config, io);
    case 'render':
      return render(config, io, positionals[0], values.mac);
    case 'lint':
      return lint(config, io);
    case 'profiles':
      return profiles(config, io);
    case 'templates':
      return templatesCommand(config, io, positionals);
    case 'hosts':
      return hostsCommand(config, io, positionals, Boolean(values['dry-run']));
    case 'power':
    case 'bmc':
      return withCore(config, silentLogger(), (core) => powerCommand(core, io, command, positionals));
    case 'image':
      return withCore(config, silentLogger(), (core) =>
        imageCommand(core, config, io, positionals, { name: values.name, force: Boolean(values.force) }),
      );
    case 'loaders':
      return withCore(config, silentLogger(), (core) => loadersCommand(config, io, positionals, core));
    case 'backup':
      return backupCommand(config, io, positionals[0]);
    case 'restore':
      return restoreCommand(config, io, positionals[0], Boolean(values.force));
    case 'doctor': {
      // Before openCore: it reads secret.key. A readable key is a failure doctor reports with its fix.
      const keyProblem = secretKeyProblem(config.dataDir);
      if (keyProblem) io.out(`FAIL ${keyProblem.replace(' Fix: ', '\n     fix: ')}`);
      const code = await withCore(config, silentLogger(), (core) => doctorCommand(core, config, io));
      return keyProblem ? 1 : code;
    }
    case 'rack':
      return withCore(config, silentLogger(), (core) =>
        rackCommand(core, io, positionals, {
          power: Boolean(values.power),
          wave: values.wave,
          interval: values.interval,
          confirm: Boolean(values.confirm),
          dataDir: config.dataDir,
        }),
      );
    case 'rollout':
      return withCore(config, silentLogger(), (core) => rolloutCommand(core, io, positionals));
    case 'users':
      return usersCommand(config, io, positionals, {
        role: values.role,
        passwordStdin: Boolean(values['password-stdin']),
      });
    default:
      io.err(`rackboot: unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}

async function serve(config: Config, io: Io): Promise<number> {
  const keyProblem = secretKeyProblem(config.dataDir);
  if (keyProblem) {
    io.err(`rackboot: refusing to start: ${keyProblem}`);
    return 2;
  }
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  let running;
  try {
    running = await startRackboot(config, log, io.env);
  } catch (err) {
    if (err instanceof SecretKeyError) {
      io.err(`rackboot: refusing to start: ${err.message}`);
      return 2;
    }
    const e = err as NodeJS.ErrnoException & { port?: number };
    const hint =
      e.code === 'EACCES'
        ? ': ports below 1024 need root or CAP_NET_BIND_SERVICE'
        : e.code === 'EADDRINUSE'
          ? ': another process has this port (stop it, or choose another port)'
          : '';
    io.err(`rackboot: cannot start: ${e.message}${hint}`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info(
        { signal, graceMs: config.shutdownGraceMs },
        'shutting down: no new requests; finishing transfers in flight',
      );
      // A second signal, or a shutdown stuck past the grace period, ends the process at once (the store is crash-safe).
      const force = (why: string) => {
        log.warn({ why }, 'shutdown forced');
        process.exit(1);
      };
      process.once('SIGTERM', () => force('second SIGTERM'));
      process.once('SIGINT', () => force('second SIGINT'));
      setTimeout(() => force('shutdown took too long'), config.shutdownGraceMs + 15_000).unref();
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await running.close();
  log.info('stopped: store closed');
  return 0;
}

async function backupCommand(config: Config, io: Io, file: string | undefined): Promise<number> {
  if (!file) {
    io.err('rackboot backup FILE: name the file to write (e.g. /var/backups/rackboot-$(date +%F).db)');
    return 2;
  }
  const r = await backupStore(config, file);
  if (!r.ok) {
    io.err(`rackboot backup: ${r.message}`);
    return 1;
  }
  io.out(r.message);
  return 0;
}

async function restoreCommand(config: Config, io: Io, file: string | undefined, force: boolean): Promise<number> {
  if (!file) {
    io.err('rackboot restore FILE [--force]: name a file written by rackboot backup');
    return 2;
  }
  const r = await restoreStoreFile(config, file, { force });
  if (!r.ok) {
    io.err(`rackboot restore: ${r.message}`);
    return 1;
  }
  io.out(r.message);
  return 0;
}

/** Opens the core on --database (the data dir's SQLite file, or PostgreSQL), runs fn, then closes it (queued events flushed). */
async function withCore<T>(config: Config, log: Logger, fn: (core: Core) => T | Promise<T>): Promise<T> {
  const core = await openCore(config, log);
  try {
    return await fn(core);
  } finally {
    await core.close();
  }
}

async function render(config: Config, io: Io, kind: string | undefined, macText: string | undefined): Promise<number> {
  if (!kind || !['kickstart', 'pxelinux', 'grub', 'ipxe'].includes(kind)) {
    io.err('rackboot render: KIND must be kickstart, pxelinux, grub or ipxe');
    return 2;
  }
  const mac = macText ? parseMac(macText) : undefined;
  if (!mac) {
    io.err(`rackboot render: --mac ${macText ?? '(missing)'} is not a MAC address`);
    return 2;
  }
  return withCore(config, silentLogger(), async (core) => {
    const r = await core.provisioner.preview(mac, kind as 'kickstart', { maskSecrets: false });
    if (!r.ok) {
      io.err(`rackboot render: ${r.message}`);
      return 1;
    }
    io.out(r.value.trimEnd());
    return 0;
  });
}

function lint(config: Config, io: Io): Promise<number> {
  return withCore(config, silentLogger(), async (core) => {
    const snap = core.catalog.snapshot;
    const problems = [
      ...snap.errors.map(formatProfileError),
      ...core.templates.library.errors.map(formatTemplateError),
    ];
    const hosts = await core.hosts.list();
    for (const host of hosts) {
      const r = core.provisioner.profileFor(host);
      if (!r.ok) {
        problems.push(`host ${host.hostname} (${host.mac}): ${r.message}`);
        continue;
      }
      if (r.value.network.mode === 'static' && (!host.ip || !host.netmask))
        problems.push(
          `host ${host.hostname} (${host.mac}): profile ${host.profile} uses a static network, but the host has no ip/netmask`,
        );
    }
    for (const p of problems) io.err(p);
    io.out(
      `${snap.profiles.size} profile(s), ${hosts.length} host(s): ${problems.length ? `${problems.length} problem(s)` : 'ok'}`,
    );
    return problems.length ? 1 : 0;
  });
}

function profiles(config: Config, io: Io): Promise<number> {
  return withCore(config, silentLogger(), (core) => {
    const snap = core.catalog.snapshot;
    for (const p of snap.profiles.values())
      io.out(`${p.name}${p.extends ? ` (extends ${p.extends})` : ''}: ${p.profile.description}`);
    for (const e of snap.errors) io.err(`error: ${formatProfileError(e)}`);
    return snap.errors.length ? 1 : 0;
  });
}

async function templatesCommand(config: Config, io: Io, args: string[]): Promise<number> {
  if (args[0] !== 'list') {
    io.err('rackboot templates: the subcommand is list');
    return 2;
  }
  return withCore(config, silentLogger(), (core) => {
    const report = templateReport(core.templates.library, core.catalog.snapshot.profiles.values());
    const { out, err } = formatTemplateReport(report);
    for (const l of out) io.out(l);
    for (const l of err) io.err(l);
    return err.length ? 1 : 0;
  });
}

function hostsCommand(config: Config, io: Io, args: string[], dryRun: boolean): Promise<number> {
  const [sub, arg] = args;
  return withCore(config, silentLogger(), async (core) => {
    const p = core.provisioner;
    if (sub === 'list') {
      for (const h of await core.hosts.list())
        io.out([h.mac, h.hostname, h.profile, h.ip ?? '-', h.rack ?? '-', p.state(h.mac)].join('\t'));
      return 0;
    }
    if (sub === 'import') {
      if (!arg) {
        io.err('rackboot hosts import FILE [--dry-run]');
        return 2;
      }
      let text: string;
      try {
        text = readFileSync(arg, 'utf8');
      } catch (err) {
        io.err(`rackboot hosts import: ${(err as Error).message}`);
        return 1;
      }
      const r = checkRackCsv(text, {
        profileExists: (n) => core.catalog.get(n) !== undefined,
        // The view, just loaded from the store: the checks are synchronous, and insertMany refuses a late duplicate.
        macTaken: (m) => core.view.host(m as Mac) !== undefined,
        ipTaken: (ip) => core.view.hostByIp(ip) !== undefined,
        hostnameTaken: (n) => core.view.hostByHostname(n) !== undefined,
        // The shell on the server is an admin's: only the profile-schema check of parameters applies.
        hostProblems: (h) =>
          guardHostParams({ role: 'admin', allowed: [], profile: (n) => core.catalog.get(n) }, {}, h),
        buildProblems: (h) => buildReadinessProblems(core.catalog.get(h.profile), h),
        mayImportBmc: true,
      });
      if (!r.ok) {
        for (const line of r.problems) io.err(`${arg}: ${line}`);
        io.err(`nothing imported: ${r.problems.length} problem(s)`);
        return 1;
      }
      if (dryRun) {
        io.out(`dry run: ${r.hosts.length} host(s) would be imported`);
        return 0;
      }
      await core.hosts.insertMany(r.hosts);
      await core.audit.record(
        'cli',
        'host.import',
        `${r.hosts.length} hosts`,
        r.hosts.map((h) => h.mac),
      );
      for (const [mac, bmc] of r.bmc) await core.bmc.set(mac, bmc);
      io.out(`imported ${r.hosts.length} host(s)${r.bmc.size ? `, ${r.bmc.size} with a BMC` : ''}`);
      return 0;
    }
    if (sub === 'build' || sub === 'cancel') {
      const mac = arg ? parseMac(arg) : undefined;
      if (!mac) {
        io.err(`rackboot hosts ${sub} MAC: "${arg ?? ''}" is not a MAC address`);
        return 2;
      }
      if (sub === 'cancel') {
        const r = await p.cancelBuild(mac, 'cli');
        if (!r.ok) {
          io.err(r.message);
          return 1;
        }
        io.out(`build ${r.value.id} cancelled`);
        return 0;
      }
      const r = await p.startBuild(mac, 'cli');
      if (!r.ok) {
        io.err(r.message);
        return 1;
      }
      io.out(
        JSON.stringify(
          {
            kickstartUrl: r.value.kickstartUrl,
            builtUrl: r.value.builtUrl,
            failedUrl: r.value.failedUrl,
            expiresAt: r.value.expiresAt,
          },
          null,
          2,
        ),
      );
      return 0;
    }
    io.err('rackboot hosts list | import FILE [--dry-run] | build MAC | cancel MAC');
    return 2;
  });
}

async function hashPasswordCommand(io: Io): Promise<number> {
  const input = (await io.readStdin()).replace(/\r?\n$/, '');
  if (!input) {
    io.err(
      'rackboot hash-password: type the password on stdin (e.g. `read -rs P; printf %s "$P" | rackboot hash-password`)',
    );
    return 2;
  }
  io.out(hashPassword(input));
  return 0;
}
