// The shapes of the API: what requests may carry (checked by apiRoute before a handler runs) and what answers
// hold (the OpenAPI document; the test suite validates real answers against it). Times are ISO 8601 UTC.
import { z } from 'zod';
import { pageOf, pageQuery } from './paging.ts';
import { BMC_INPUT } from '../hosts/bmc-input.ts';
import { POWER_REQUESTS } from '../bmc/power.ts';

const iso = z.iso.datetime().describe('ISO 8601 UTC');
/** A query text: one value (not ?x=a&x=b), no control characters, bounded. */
const queryText = (what: string, max = 64) =>
  z
    .string()
    .max(max, `at most ${max} characters`)
    // eslint-disable-next-line no-control-regex
    .regex(/^[^\u0000-\u001f\u007f\u2028\u2029]*$/, 'no control characters')
    .describe(what);

export const MacParams = z.object({ mac: z.string().max(64).describe('aa:bb:cc:dd:ee:ff or aa-bb-cc-dd-ee-ff') });

export const HOST_STATES = ['idle', 'build', 'built', 'failed', 'expired'] as const;

// --- BMCs (src/http/bmc-api.ts) ---------------------------------------------------------------------------------
const isoTime = z.iso.datetime().describe('ISO 8601 UTC');
export const BmcJson = z.object({
  driver: z.enum(['redfish', 'ipmi']),
  address: z.string(),
  username: z.string(),
  system: z.string().optional(),
  verifyTls: z.boolean(),
  fingerprint: z.string().optional(),
  passwordSet: z.boolean().describe('the password is write-only: only whether one is kept'),
  updatedAt: isoTime,
});
export const BmcBody = {
  contentType: 'application/json',
  description: 'the BMC; password left out keeps the one stored (required for a first BMC)',
  schema: BMC_INPUT,
};
export const PowerBody = z
  .object({
    action: z.enum(POWER_REQUESTS, { error: `must be one of ${POWER_REQUESTS.join(', ')}` }),
  })
  .strict();
export const PowerAnswer = z.object({ powerState: z.enum(['on', 'off', 'unknown']) });
export const BmcFacts = z.object({
  model: z.string().optional(),
  serial: z.string().optional(),
  powerState: z.enum(['on', 'off', 'unknown']),
  macs: z.array(z.string()).describe('the NIC MACs the BMC reports'),
  macReported: z.boolean().optional().describe("whether the host's MAC is among them"),
});

// --- Hosts ------------------------------------------------------------------------------------------------------
const hostFields = {
  mac: z.string(),
  hostname: z.string(),
  profile: z.string(),
  ip: z.string().optional(),
  netmask: z.string().optional(),
  gateway: z.string().optional(),
  nameservers: z.array(z.string()),
  domain: z.string().optional(),
  rack: z.string().optional(),
  position: z.string().optional(),
  uuid: z.string().optional(),
  site: z.string().optional().describe('the site whose nodes serve the host; absent: every site'),
  params: z.record(z.string(), z.string()).describe('profile field path -> value (secret values masked for techs)'),
  createdAt: iso,
  updatedAt: iso,
  bmc: BmcJson.nullable().optional().describe("when the server keeps BMCs: the host's, or null"),
};

export const Stuck = z
  .object({
    stage: z.string().describe('power-on, dhcp, loader, kernel or kickstart'),
    waitingFor: z.string(),
    since: iso,
    forSeconds: z.number().int(),
    lastSeen: z.object({ type: z.string(), at: iso, status: z.string().optional() }).optional(),
    autoCycled: z.boolean().describe('whether one automatic power-cycle was tried'),
    text: z.string().describe('one line: "stuck: power-on for 6m 52s"'),
  })
  .nullable()
  .describe('past a stage time limit (config stuck:), else null');

export const Host = z.object({ ...hostFields, state: z.enum(HOST_STATES), stuck: Stuck.optional() });

export const BuildSummary = z.object({
  id: z.number().int(),
  status: z.enum(['pending', 'built', 'failed', 'cancelled', 'superseded']),
  tokenPrefix: z.string(),
  createdAt: iso,
  expiresAt: iso,
  kickstartFetchedAt: iso.optional(),
  kickstartFetchedFrom: z.string().optional(),
  finishedAt: iso.optional(),
  failureLog: z.string().optional(),
});

export const HostEvent = z.object({
  id: z.number().int(),
  mac: z.string(),
  buildId: z.number().int().optional(),
  at: iso,
  type: z.string().describe('dhcp.offer, pxelinux.config, kickstart, build.start, built, failed, ...'),
  clientIp: z.string().optional(),
  status: z.string().optional(),
  bytes: z.number().optional(),
  detail: z.record(z.string(), z.unknown()).optional(),
  node: z.string().optional().describe('the rackboot node that saw it (several nodes on one database)'),
});

export const HostView = z.object({
  ...hostFields,
  state: z.enum(HOST_STATES),
  stuck: Stuck.optional(),
  build: BuildSummary.optional(),
  events: z.array(HostEvent).describe('the latest 500 events of the timeline, oldest first'),
  rebuildNote: z.string().optional(),
});

const optionalText = (what: string) => z.string().nullable().optional().describe(what);
/** The host record a person or script sends; src/hosts/input.ts then checks every value's grammar. */
export const HostBody = z
  .object({
    mac: z.string().describe('aa:bb:cc:dd:ee:ff; on PUT it may be left out, never changed'),
    hostname: z.string(),
    profile: z.string().describe('a loaded profile (GET /api/profiles)'),
    ip: optionalText('IPv4 address (static network profiles)'),
    netmask: optionalText('255.255.255.0'),
    gateway: optionalText('IPv4 address in the subnet of ip'),
    nameservers: z
      .union([z.array(z.string()), z.string()])
      .nullable()
      .optional(),
    domain: optionalText('DNS domain'),
    rack: optionalText('rack label (up to 64 characters)'),
    position: optionalText('position in the rack, e.g. U12'),
    uuid: optionalText('SMBIOS UUID'),
    site: optionalText('the site whose nodes serve the host (--site); empty: every site'),
    bmc: z.unknown().optional().describe('admin only: a BMC (see PUT /api/hosts/{mac}/bmc), or null to remove it'),
    params: z
      .record(
        z.string(),
        z.union([z.string(), z.number(), z.boolean(), z.array(z.unknown()), z.record(z.string(), z.unknown())]),
      )
      .nullable()
      .optional()
      .describe('profile field path -> value, e.g. {"timezone.name": "UTC"}'),
  })
  .strict();
export const HostPatchBody = HostBody.partial().strict();

export const HostListQuery = z
  .object({
    ...pageQuery,
    rack: queryText('only hosts of this rack').optional(),
    state: z.enum(HOST_STATES).optional().describe('only hosts in this state'),
    profile: queryText('only hosts of this profile').optional(),
    site: queryText('only hosts of this site (hosts without a site belong to every site)').optional(),
  })
  .strict();

export const HostPage = pageOf(Host);

export const BuildStarted = z.object({
  token: z.string().describe('the build token (also in the URLs): shown here once'),
  kickstartUrl: z.string(),
  builtUrl: z.string(),
  failedUrl: z.string(),
  expiresAt: iso,
  buildId: z.number().int(),
  eventsUrl: z.string(),
});

export const BuildCancelled = z.object({
  mac: z.string(),
  buildId: z.number().int(),
  status: z.string(),
});

export const ImportQuery = z
  .object({ dryRun: z.enum(['1', 'true', '0', 'false']).optional().describe('1: check only, write nothing') })
  .strict();
export const ImportResult = z.object({
  dryRun: z.boolean(),
  imported: z.number().int(),
  hosts: z.array(z.object({ ...hostFields, createdAt: iso.optional(), updatedAt: iso.optional() })),
});

export const RenderParams = MacParams.extend({ kind: z.enum(['kickstart', 'pxelinux', 'grub', 'ipxe']) });

// --- Timelines and logs -----------------------------------------------------------------------------------------
export const EventsQuery = z.object({ ...pageQuery }).strict();
export const EventStream = z.object({
  items: z.array(HostEvent),
  nextCursor: z.string().describe('always set: poll it for newer events (an empty page means none yet)'),
});

const LogLine = z.object({
  id: z.number().int(),
  at: iso,
  severity: z.string(),
  facility: z.number().int().optional(),
  host: z.string().optional(),
  app: z.string().optional(),
  clientIp: z.string().optional(),
  text: z.string(),
});
const intText = (what: string) =>
  z
    .string()
    .regex(/^\d{1,15}$/, 'a whole number')
    .describe(what);
export const LogsQuery = z
  .object({
    build: intText('a build id (default: the latest)').optional(),
    q: queryText('substring, any case', 256).optional(),
    severity: z.string().max(16).optional().describe('0-7 or emerg..debug: that level and worse'),
    limit: z
      .string()
      .regex(/^\d{1,4}$/, 'a whole number from 1 to 5000')
      .optional()
      .describe('lines (1-5000, default 500)'),
    before: intText('line id: the lines before it (paging back)').optional(),
    cursor: z.string().max(512).optional().describe('nextCursor of the previous answer: the lines after it'),
    format: z.enum(['json', 'text']).optional(),
  })
  .strict();
export const HostLogs = z.object({
  mac: z.string(),
  buildId: z.number().int(),
  ringLines: z.number().int(),
  lines: z.array(LogLine),
  nextCursor: z.string().describe('always set: pass it as ?cursor= to get only newer lines (follow)'),
});
export const BuildLogParams = MacParams.extend({ id: z.string().regex(/^\d{1,15}$/, 'the build id must be a number') });
export const BuildLogsQuery = LogsQuery.omit({ build: true, cursor: true, format: true }).strict();
export const BuildLogs = z.object({
  mac: z.string(),
  buildId: z.number().int(),
  status: z.string(),
  createdAt: iso,
  finishedAt: iso.optional(),
  failureLog: z.string().nullable(),
  syslog: z.array(LogLine),
  ringLines: z.number().int(),
});

// --- Discovered machines ----------------------------------------------------------------------------------------
export const Discovered = z.object({
  mac: z.string(),
  arch: z.number().int().nullable().describe('DHCP option 93 (0 BIOS, 7 x64 UEFI, 16 x64 UEFI HTTP, ...)'),
  uuid: z.string().nullable(),
  ipxe: z.boolean(),
  ip: z.string().nullable(),
  firstSeen: iso,
  lastSeen: iso,
});
export const DiscoveredQuery = z.object({ ...pageQuery }).strict();
export const DiscoveredPage = pageOf(Discovered);

// --- Profiles, images, settings ---------------------------------------------------------------------------------
export const Profiles = z.object({
  loadedAt: iso,
  profiles: z.array(
    z.object({
      name: z.string(),
      file: z.string(),
      extends: z.string().optional(),
      description: z.string().optional(),
      stale: z.boolean().describe('its file is broken: the last good version keeps serving'),
    }),
  ),
  errors: z.array(
    z.object({
      profile: z.string(),
      file: z.string(),
      line: z.number().int().optional(),
      field: z.string(),
      message: z.string(),
      text: z.string(),
    }),
  ),
});

export const Image = z.object({
  name: z.string(),
  version: z.string(),
  sourceSha256: z.string(),
  importedAt: iso,
  kernel: z.string(),
  initrd: z.string(),
  stage2: z.string(),
  liveimg: z.string(),
  usedBy: z.array(z.string()).describe('profiles with image: NAME'),
  efiLoaders: z.record(z.string(), z.unknown()).nullable(),
  files: z.array(z.looseObject({ root: z.string(), path: z.string(), size: z.number(), sha256: z.string() })),
});
export const Images = z.array(Image);

export const TechParams = z.object({
  techParams: z.array(z.string()).describe('profile field paths a tech may set on a host'),
  neverForTechs: z.array(z.string()),
});
export const TechParamsBody = z.union([z.array(z.unknown()), z.object({ techParams: z.unknown() }).strict()]);

// Rollouts (src/rollout/api.ts): waves of builds over a rack or a list of hosts.
export const RackParams = z.object({
  rack: z
    .string()
    .min(1, 'a rack name (1-64 printable characters)')
    .max(64, 'at most 64 characters')
    // eslint-disable-next-line no-control-regex
    .regex(/^[^\u0000-\u001f\u007f\u2028\u2029]*$/, 'no control characters'),
});
export const RolloutParams = z.object({
  id: z.string().regex(/^[1-9]\d{0,14}$/, 'not a rollout id (a positive whole number)'),
});
/** A whole number in a range, refused with the one message that names the range (not zod's per-rule text). */
const wholeIn = (min: number, max: number) => {
  const error = `must be a whole number from ${min} to ${max}`;
  return z.number({ error }).int(error).min(min, error).max(max, error);
};
const flag = () => z.boolean({ error: 'must be true or false' });
const macList = () =>
  z
    .array(z.string({ error: 'a MAC address' }).max(64), { error: 'must be a list of 1 or more MAC addresses' })
    .min(1, 'must be a list of 1 or more MAC addresses')
    .max(10_000, 'at most 10000 per request');
const rolloutOptions = {
  power: flag().optional().describe('power-cycle each host through its BMC (default false)'),
  waveSize: wholeIn(1, 256).optional().describe('hosts per wave (default 8)'),
  waveIntervalSeconds: wholeIn(0, 3600).optional().describe('between waves (default 20)'),
  confirm: flag().optional().describe('rebuild built hosts (wipes their disks)'),
};
export const RackBuildBody = z.object(rolloutOptions).strict();
export const HostsBuildBody = z
  .object({ macs: macList().describe('the hosts, in wave order'), ...rolloutOptions })
  .strict();
export const HostsCancelBody = z.object({ macs: macList() }).strict();
const ROLLOUT_STEPS = ['queued', 'build-started', 'boot-set', 'powered', 'failed', 'cancelled'] as const;
export const RolloutSummary = z.object({
  id: z.number().int(),
  status: z.enum(['running', 'done', 'cancelled']),
  scope: z.string().describe('"rack r1" or "hosts"'),
  actor: z.string(),
  power: z.boolean(),
  waveSize: z.number().int(),
  waveIntervalSeconds: z.number(),
  waves: z.number().int(),
  nextWave: z.number().int().nullable().describe('while running: the wave due next'),
  nextWaveAt: iso.nullable(),
  createdAt: iso,
  finishedAt: iso.nullable(),
  hostCount: z.number().int(),
  steps: z.partialRecord(z.enum(ROLLOUT_STEPS), z.number().int()).describe('hosts per step'),
});
export const RolloutView = RolloutSummary.extend({
  hosts: z.array(
    z.object({
      mac: z.string(),
      hostname: z.string().nullable().describe('null: the host was deleted since'),
      wave: z.number().int(),
      step: z.enum(ROLLOUT_STEPS),
      reason: z.string().nullable(),
      buildId: z.number().int().nullable(),
      updatedAt: iso,
      state: z.enum([...HOST_STATES, 'deleted']),
      stuck: Stuck,
    }),
  ),
});
export const RolloutListQuery = z.object({ ...pageQuery }).strict();
export const RolloutPage = pageOf(RolloutSummary);
export const CancelledHosts = z.object({
  rollouts: z.array(z.number().int()).describe('rollouts this ended (nothing left to do in them)'),
  builds: z.array(z.string()).describe('hosts whose running build was cancelled'),
});

// Templates, effective profiles and webhook deliveries (src/http/api/templates.ts).
export const TemplateUsageReport = z.object({
  templates: z.array(
    z.object({
      kind: z.enum(['boot', 'kickstart', 'snippet']),
      name: z.string(),
      file: z.string(),
      origin: z.enum(['shipped', 'overlay']),
      overrides: z.string().optional().describe('the shipped file an overlay one replaces'),
      stale: z.boolean().describe('serving its last good version: the file on disk is broken'),
      profiles: z.array(z.string()),
    }),
  ),
  missing: z.array(z.object({ profile: z.string(), template: z.string() })),
  errors: z.array(
    z.object({ file: z.string(), line: z.number().int().optional(), message: z.string(), text: z.string() }),
  ),
});
export const ProfileParams = z.object({ name: z.string().min(1).max(128) });
export const EffectiveQuery = z
  .object({ mac: queryText('a host of this profile: its parameters applied', 64).optional() })
  .strict();
export const EffectiveProfile = z.object({
  profile: z.string(),
  file: z.string(),
  extends: z.string().optional(),
  host: z.object({ mac: z.string(), hostname: z.string() }).optional(),
  values: z.array(
    z.object({
      field: z.string().describe('dotted path, as host parameters name it'),
      value: z.unknown(),
      source: z.enum(['host', 'profile', 'parent', 'default']),
      from: z.string().optional(),
      file: z.string().optional(),
    }),
  ),
});
export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed', 'dropped'] as const;
export const DeliveriesQuery = z
  .object({
    ...pageQuery,
    mac: queryText('only deliveries about this host', 64).optional(),
    status: z.enum(DELIVERY_STATUSES).optional(),
  })
  .strict();
export const Delivery = z.object({
  id: z.string(),
  event: z.string(),
  target: z.string().describe("the URL's origin only: paths and queries often hold tokens"),
  mac: z.string().optional(),
  buildId: z.number().int().optional(),
  status: z.enum(DELIVERY_STATUSES),
  attempts: z.number().int(),
  createdAt: iso,
  lastAttemptAt: iso.optional(),
  nextAttemptAt: iso.optional().describe('while pending'),
  httpStatus: z.number().int().optional(),
  error: z.string().optional(),
  ms: z.number().optional(),
});
export const DeliveryPage = pageOf(Delivery);

// Nodes sharing the database (src/ops/nodes.ts).
export const Nodes = z.object({
  self: z.string().describe("this node's id"),
  nodes: z.array(
    z.object({
      id: z.string(),
      site: z.string().nullable(),
      version: z.string(),
      address: z.string(),
      publicUrl: z.string(),
      ports: z.record(z.string(), z.union([z.number().int(), z.array(z.number().int())])).describe('by service'),
      startedAt: iso,
      lastHeartbeat: iso,
      stoppedAt: iso.nullable(),
      alive: z.boolean().describe('heartbeat seen within three beats'),
      duties: z
        .array(z.string())
        .describe(
          "once-per-database duties this node carries out now: 'rollouts' (the rollout runner and stuck detection)",
        ),
    }),
  ),
});

/** Shapes several answers share: named once in the document's components. */
export const SHARED_SCHEMAS = { Host, HostView, HostEvent, Discovered, BuildSummary, ImportResult } as const;
