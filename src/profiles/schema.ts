// The shape of a profile after inheritance is resolved. Field names are the outside contract of profiles/*.yaml.
// Every text field has a grammar (src/profiles/grammar.ts): control characters and line separators are refused
// everywhere, with an error naming the field and the character; rendering then escapes per target syntax.
import { z } from 'zod';
import * as g from './grammar.ts';

export const DEFAULT_STIG_PROFILE = 'xccdf_org.ssgproject.content_profile_stig';
/** The shipped kickstart template, used by a profile that names none. */
export const DEFAULT_KICKSTART_TEMPLATE = 'rhvh.ks.eta';
export const DEFAULT_SATELLITE_REPOS = ['rhel-7-server-rhvh-4-rpms'];

/** A string field checked by one grammar; the message is the grammar's, zod puts the field path in front. */
const text = (check: g.Check) =>
  z.string().superRefine((v, ctx) => {
    const bad = check(v);
    if (bad) ctx.addIssue({ code: 'custom', message: bad });
  });

const tftpPath = text(g.checkRelativePath);
const urlOrPath = text(g.checkUrlOrPath);
const lvmName = text(g.checkLvmName);
const fsType = text(g.checkFsType);

export const imageFilesSchema = z.strictObject({
  kernel: tftpPath,
  initrd: tftpPath,
  stage2: urlOrPath,
  liveimg: urlOrPath,
});

export const volumeSchema = z.strictObject({
  mount: text(g.checkMountPoint),
  name: lvmName,
  size: z
    .number()
    .int()
    .positive()
    .max(1 << 30),
  fstype: fsType.default('ext4'),
  grow: z.boolean().default(false),
  fsoptions: text(g.checkMountOptions).default('defaults,discard'),
});

const diskSpec = text(g.checkDiskSpec);
/** The install disks (ignoredisk --only-use=, clearpart --drives=): without them Anaconda uses, and clears, every disk it sees. */
const disksSchema = z
  .array(diskSpec)
  .min(1)
  .max(64)
  .refine((d) => new Set(d).size === d.length, 'lists a disk twice')
  .optional();

export const customLayoutSchema = z.strictObject({
  layout: z.literal('custom'),
  disks: disksSchema,
  /** The disk that holds /boot and the physical volume (part --ondisk=); one of `disks` when both are set. */
  disk: diskSpec.optional(),
  boot: z
    .strictObject({
      size: z
        .number()
        .int()
        .positive()
        .max(1 << 20)
        .default(1024),
      fstype: fsType.default('xfs'),
    })
    .default({ size: 1024, fstype: 'xfs' }),
  /** The physical volume: a size in MiB, growing to fill the disk by default. */
  pv: z
    .strictObject({
      size: z
        .number()
        .int()
        .positive()
        .max(1 << 30)
        .default(42000),
      grow: z.boolean().default(true),
    })
    .default({ size: 42000, grow: true }),
  volgroup: lvmName.default('HostVG'),
  reservedPercent: z.number().int().min(1).max(80).optional(),
  reservedSpace: z
    .number()
    .int()
    .positive()
    .max(1 << 30)
    .optional(),
  thinpool: z.strictObject({
    name: lvmName.default('HostPool'),
    size: z
      .number()
      .int()
      .positive()
      .max(1 << 30),
    grow: z.boolean().default(true),
  }),
  swap: z
    .union([
      z.strictObject({ recommended: z.literal(true) }),
      z.strictObject({
        size: z
          .number()
          .int()
          .positive()
          .max(1 << 30),
      }),
    ])
    .default({ recommended: true }),
  volumes: z.array(volumeSchema).min(1).max(64),
});

export const partitioningSchema = z.discriminatedUnion('layout', [
  z.strictObject({ layout: z.literal('autopart'), disks: disksSchema }),
  customLayoutSchema,
]);

export const profileSchema = z.strictObject({
  description: text(g.checkDescription).default(''),
  /** The name of an imported image (`rackboot image import`), or its four locations spelt out. */
  image: z.union([
    text(
      g.grammar(63, (v) =>
        /^[a-z0-9][a-z0-9._-]*$/.test(v)
          ? undefined
          : 'must be the name of an imported image (rackboot image list) or an object with kernel, initrd, stage2, liveimg',
      ),
    ),
    imageFilesSchema,
  ]),
  boot: z
    .strictObject({
      loader: z.enum(['native', 'ipxe']).default('native'),
      /** Installer-only kernel arguments (the PXE/GRUB/iPXE install line). */
      kernelArgs: text(g.checkKernelArgs).default(''),
      /** Kernel arguments of the installed host (bootloader --append=). */
      hostKernelArgs: text(g.checkKernelArgs).default(''),
      /** UEFI: %post puts the network boot entry back first in BootOrder, so a later rebuild is seen (Foreman's efibootmgr_netboot). */
      keepNetbootFirst: z.boolean().default(true),
      /** UEFI chain: the image's own signed shim/GRUB (from its EFI/BOOT/), or the ones `loaders sync` installed. Unset: the image's when it has them. */
      uefiLoaders: z
        .enum(['image', 'sync'], {
          message: "must be image (the image's own EFI/BOOT loaders) or sync (the loaders from rackboot loaders sync)",
        })
        .optional(),
    })
    .default({ loader: 'native', kernelArgs: '', hostKernelArgs: '', keepNetbootFirst: true }),
  partitioning: partitioningSchema.default({ layout: 'autopart' }),
  network: z
    .strictObject({
      mode: z.enum(['dhcp', 'static']).default('dhcp'),
      /** Nameservers and domain used when the host record does not give its own. */
      nameservers: z.array(text(g.checkIpv4)).max(8).default([]),
      domain: text(g.checkDnsName).optional(),
    })
    .default({ mode: 'dhcp', nameservers: [] }),
  rootPassword: text(
    g.grammar(200, (v) =>
      /^\$6\$(rounds=\d{1,9}\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{86}$/.test(v)
        ? undefined
        : 'must be a SHA-512 crypt hash ($6$...): make one with `rackboot hash-password`',
    ),
  ),
  sshKeys: z.array(text(g.checkSshKey)).max(64).default([]),
  timezone: z
    .strictObject({ name: text(g.checkTimezone), utc: z.boolean().default(true) })
    .default({ name: 'UTC', utc: true }),
  ntpServers: z.array(text(g.checkNtpServer)).max(16).default([]),
  keyboard: text(g.checkKeyboard).default('us'),
  lang: text(g.checkLang).default('en_US.UTF-8'),
  stig: z
    .strictObject({
      enabled: z.boolean().default(false),
      profile: text(g.checkXccdfProfile).default(DEFAULT_STIG_PROFILE),
    })
    .default({ enabled: false, profile: DEFAULT_STIG_PROFILE }),
  satellite: z
    .strictObject({
      enabled: z.boolean().default(true),
      server: text((v) => (g.checkIpv4(v) === undefined ? undefined : g.checkFqdn(v))),
      org: text(g.checkOrgLabel),
      activationKey: text(g.checkActivationKey),
      repos: z.array(text(g.checkRepoId)).min(1).max(64).default(DEFAULT_SATELLITE_REPOS),
    })
    .optional(),
  /** The kickstart template (a file of templates/kickstart/ or of the operator's templatesDir); unset: rhvh.ks.eta. */
  kickstart: text(g.checkTemplateName).optional(),
  /** Shell lines run in %post after registration (bash, as root, in the installed system). */
  post: text(g.checkSnippet).default(''),
});

export type Profile = z.infer<typeof profileSchema>;
export type ImageFiles = z.infer<typeof imageFilesSchema>;
/** A profile whose image name has been looked up: what the renderer works from. */
export type ResolvedProfile = Omit<Profile, 'image'> & { image: ImageFiles; imageName?: string };
export type CustomLayout = z.infer<typeof customLayoutSchema>;
export type Partitioning = z.infer<typeof partitioningSchema>;
