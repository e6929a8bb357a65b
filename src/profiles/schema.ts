// The shape of a profile after inheritance is resolved. Field names are the outside contract of profiles/*.yaml.
import { z } from 'zod';

export const DEFAULT_STIG_PROFILE = 'xccdf_org.ssgproject.content_profile_stig';
export const DEFAULT_SATELLITE_REPOS = ['rhel-7-server-rhvh-4-rpms'];

// Anything that ends up on a kickstart or kernel command line must not be able to break out of it.
const safeWord = (what: string) => z.string().min(1).regex(/^[^\s"'`$\\]+$/, `${what} must be one word without spaces, quotes, $ or backslashes`);
const urlOrPath = z.string().min(1).regex(/^(https?:\/\/[^\s"'`]+|[A-Za-z0-9._\-/]+)$/, 'must be an http(s) URL or a path under the images directory (letters, digits, . _ - /)');
const tftpPath = z.string().min(1).regex(/^[A-Za-z0-9._\-/]+$/, 'must be a path under the TFTP root (letters, digits, . _ - /)').refine((p) => !p.split('/').includes('..'), 'must not contain ".."');
const ipv4 = z.string().regex(/^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/, 'must be an IPv4 address such as 10.0.0.1');
const hostnameish = z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/, 'must be a DNS name');

export const imageFilesSchema = z.strictObject({
  kernel: tftpPath,
  initrd: tftpPath,
  stage2: urlOrPath,
  liveimg: urlOrPath,
});

export const volumeSchema = z.strictObject({
  mount: z.string().regex(/^\/[A-Za-z0-9._/-]*$/, 'must be an absolute mount point such as /var/log'),
  name: z.string().regex(/^[A-Za-z0-9_.+-]+$/, 'must be an LVM name (letters, digits, _ . + -)'),
  size: z.number().int().positive(),
  fstype: z.string().default('ext4'),
  grow: z.boolean().default(false),
  fsoptions: z.string().regex(/^[A-Za-z0-9=,_.-]+$/, 'must be comma-separated mount options').default('defaults,discard'),
});

export const customLayoutSchema = z.strictObject({
  layout: z.literal('custom'),
  disk: safeWord('disk').optional(),
  boot: z.strictObject({ size: z.number().int().positive().default(1024), fstype: z.string().default('xfs') }).default({ size: 1024, fstype: 'xfs' }),
  /** The physical volume: a size in MiB, growing to fill the disk by default. */
  pv: z.strictObject({ size: z.number().int().positive().default(42000), grow: z.boolean().default(true) }).default({ size: 42000, grow: true }),
  volgroup: z.string().regex(/^[A-Za-z0-9_.+-]+$/).default('HostVG'),
  reservedPercent: z.number().int().min(1).max(80).optional(),
  reservedSpace: z.number().int().positive().optional(),
  thinpool: z.strictObject({ name: z.string().regex(/^[A-Za-z0-9_.+-]+$/).default('HostPool'), size: z.number().int().positive(), grow: z.boolean().default(true) }),
  swap: z.union([z.strictObject({ recommended: z.literal(true) }), z.strictObject({ size: z.number().int().positive() })]).default({ recommended: true }),
  volumes: z.array(volumeSchema).min(1),
});

export const partitioningSchema = z.discriminatedUnion('layout', [
  z.strictObject({ layout: z.literal('autopart') }),
  customLayoutSchema,
]);

export const profileSchema = z.strictObject({
  description: z.string().default(''),
  /** The name of an imported image (`rackboot image import`), or its four locations spelt out. */
  image: z.union([z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'must be the name of an imported image (rackboot image list) or an object with kernel, initrd, stage2, liveimg'), imageFilesSchema]),
  boot: z.strictObject({
    loader: z.enum(['native', 'ipxe']).default('native'),
    kernelArgs: z.string().regex(/^[^\n"'`\\]*$/, 'must be one line of kernel arguments without quotes or backslashes').default(''),
    /** UEFI chain: the image's own signed shim/GRUB (from its EFI/BOOT/), or the ones `loaders sync` installed. Unset: the image's when it has them. */
    uefiLoaders: z.enum(['image', 'sync'], { message: 'must be image (the image\'s own EFI/BOOT loaders) or sync (the loaders from rackboot loaders sync)' }).optional(),
  }).default({ loader: 'native', kernelArgs: '' }),
  partitioning: partitioningSchema.default({ layout: 'autopart' }),
  network: z.strictObject({
    mode: z.enum(['dhcp', 'static']).default('dhcp'),
    /** Nameservers and domain used when the host record does not give its own. */
    nameservers: z.array(ipv4).default([]),
    domain: hostnameish.optional(),
  }).default({ mode: 'dhcp', nameservers: [] }),
  rootPassword: z.string().regex(/^\$6\$(rounds=\d+\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{86}$/, 'must be a SHA-512 crypt hash ($6$...): make one with `rackboot hash-password`'),
  sshKeys: z.array(z.string().regex(/^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-\S+) [A-Za-z0-9+/=]+( [^\n"'`\\$]*)?$/, 'must be one OpenSSH public key line (type, base64, optional comment)')).default([]),
  timezone: z.strictObject({ name: z.string().regex(/^[A-Za-z0-9_+\-/]+$/, 'must be a tz database name such as America/Phoenix'), utc: z.boolean().default(true) }).default({ name: 'UTC', utc: true }),
  ntpServers: z.array(hostnameish).default([]),
  keyboard: safeWord('keyboard').default('us'),
  lang: safeWord('lang').default('en_US.UTF-8'),
  stig: z.strictObject({
    enabled: z.boolean().default(false),
    profile: z.string().regex(/^xccdf_[A-Za-z0-9_.-]+$/, 'must be an XCCDF profile id such as xccdf_org.ssgproject.content_profile_stig').default(DEFAULT_STIG_PROFILE),
  }).default({ enabled: false, profile: DEFAULT_STIG_PROFILE }),
  satellite: z.strictObject({
    enabled: z.boolean().default(true),
    server: hostnameish,
    org: z.string().min(1).regex(/^[^"'`$\\\n]+$/, 'must not contain quotes, $ or backslashes'),
    activationKey: z.string().min(1).regex(/^[^"'`$\\\n]+$/, 'must not contain quotes, $ or backslashes'),
    repos: z.array(safeWord('repo id')).default(DEFAULT_SATELLITE_REPOS),
  }).optional(),
  post: z.string().default(''),
});

export type Profile = z.infer<typeof profileSchema>;
export type ImageFiles = z.infer<typeof imageFilesSchema>;
/** A profile whose image name has been looked up: what the renderer works from. */
export type ResolvedProfile = Omit<Profile, 'image'> & { image: ImageFiles; imageName?: string };
export type CustomLayout = z.infer<typeof customLayoutSchema>;
