// Field grammars: what a value may look like before it reaches a kickstart, a shell line or a boot config.
// Each check returns undefined when the value is fine, or the reason (without the field name: the caller
// puts the field in front, as "satellite.org: character U+000D (carriage return) is not allowed").
// Pure: shared by the profile schema (zod) and the host record checks (src/hosts/input.ts).

const CHAR_NAMES: Record<number, string> = {
  0x00: 'null',
  0x07: 'bell',
  0x08: 'backspace',
  0x09: 'tab',
  0x0a: 'line feed',
  0x0b: 'vertical tab',
  0x0c: 'form feed',
  0x0d: 'carriage return',
  0x1b: 'escape',
  0x1c: 'file separator',
  0x1d: 'group separator',
  0x1e: 'record separator',
  0x1f: 'unit separator',
  0x7f: 'delete',
  0x85: 'next line',
  0x2028: 'line separator',
  0x2029: 'paragraph separator',
};

/** "U+000D (carriage return)": how an error names a character a person cannot see. */
export function describeChar(cp: number): string {
  const hex = cp.toString(16).toUpperCase().padStart(4, '0');
  return `U+${hex} (${CHAR_NAMES[cp] ?? (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ? 'control character' : JSON.stringify(String.fromCodePoint(cp)))})`;
}

/**
 * C0, DEL, C1 and U+2028/U+2029. Python's str.splitlines() (pykickstart reads kickstarts with it) breaks lines
 * at \r, \v, \f, \x1c-\x1e, \x85, U+2028 and U+2029 besides \n, so any of them would end a %post line early.
 */
export function isForbiddenChar(cp: number): boolean {
  return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp === 0x2028 || cp === 0x2029;
}

/** The first forbidden character of a value, or undefined. `allow` lists code points a multi-line field may keep (\n, \t). */
export function forbiddenChar(value: string, allow: readonly number[] = []): number | undefined {
  for (const ch of value) {
    const cp = ch.codePointAt(0)!;
    if (isForbiddenChar(cp) && !allow.includes(cp)) return cp;
  }
  return undefined;
}

export type Check = (value: string) => string | undefined;

/** The rule every text field follows, whatever its own grammar: no control characters, no line separators. */
export const noControl: Check = (value) => {
  const cp = forbiddenChar(value);
  return cp === undefined ? undefined : `character ${describeChar(cp)} is not allowed`;
};

/** A field's grammar on top of noControl, with a length limit: the character error comes first, it is the precise one. */
export function grammar(maxLength: number, ...checks: Check[]): Check {
  return (value) => {
    const bad = noControl(value);
    if (bad) return bad;
    if (value.length > maxLength) return `is ${value.length} characters long; at most ${maxLength} are allowed`;
    for (const c of checks) {
      const r = c(value);
      if (r) return r;
    }
    return undefined;
  };
}

const matches =
  (re: RegExp, message: string): Check =>
  (v) =>
    re.test(v) ? undefined : message;
const nonEmpty: Check = (v) => (v.length ? undefined : 'must not be empty');

const LABEL = '[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
/** RFC 1123 host name label(s); a DNS name has at most 253 characters. */
export const checkDnsName: Check = grammar(
  253,
  matches(new RegExp(`^${LABEL}(\\.${LABEL})*$`), 'must be a DNS name (letters, digits, "-", dots between labels)'),
);
export const checkHostname: Check = checkDnsName;
/** A fully qualified name: at least two labels. */
export const checkFqdn: Check = grammar(
  253,
  matches(new RegExp(`^${LABEL}(\\.${LABEL})+$`), 'must be a fully qualified DNS name such as satellite.example.com'),
);

const IPV4_PART = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
export const checkIpv4: Check = grammar(
  15,
  matches(new RegExp(`^${IPV4_PART}(\\.${IPV4_PART}){3}$`), 'must be an IPv4 address such as 10.0.0.1'),
);
/** An NTP server: a DNS name or an IPv4 address. */
export const checkNtpServer: Check = (v) => (checkIpv4(v) === undefined ? undefined : checkDnsName(v));

/** Satellite organisation labels and activation key names: printable text, no quotes, $, backquote or backslash. */
export const checkOrgLabel: Check = grammar(
  255,
  nonEmpty,
  matches(/^[^"'`$\\]+$/, 'must not contain quotes, $, ` or backslashes'),
  matches(/^\S(.*\S)?$/, 'must not start or end with a space'),
);
export const checkActivationKey: Check = checkOrgLabel;

/** Repository ids (subscription-manager repos --enable=ID): letters, digits and _ . : - only. */
export const checkRepoId: Check = grammar(
  200,
  matches(
    /^[A-Za-z0-9_.:-]+$/,
    'must be a repository id of letters, digits, "_", ".", ":" and "-" only (e.g. rhel-7-server-rhvh-4-rpms)',
  ),
);

/** An http(s) URL with no spaces, quotes, backslashes, or characters a boot loader would read as syntax ($ { } ; # < > |). */
export const checkUrl: Check = grammar(
  2048,
  matches(
    /^https?:\/\/[A-Za-z0-9._~:/?@!&+,=%[\]-]+$/,
    'must be an http(s) URL without spaces, quotes, backslashes, $, {, }, ;, #, <, >, | (percent-encode them)',
  ),
  (v) => (/&&|\|\|/.test(v) ? 'must not contain "&&" or "||" (percent-encode them)' : undefined),
);

/** A path under rackboot's TFTP root or images directory. */
export const checkRelativePath: Check = grammar(
  1024,
  matches(/^[A-Za-z0-9._\-/]+$/, 'must be a path of letters, digits, ".", "_", "-" and "/"'),
  (v) => (v.split('/').includes('..') ? 'must not contain ".."' : undefined),
);
export const checkUrlOrPath: Check = (v) => (/^https?:\/\//i.test(v) ? checkUrl(v) : checkRelativePath(v));

/**
 * Kernel parameters that rackboot itself writes on the install line: a second one would point the installer at
 * another kickstart or stage2 (inst.ks=, ks=), another NIC (BOOTIF=), another initrd (pxelinux initrd=) or log host.
 */
export const RACKBOOT_KERNEL_KEYS = [
  'inst.ks',
  'ks',
  'inst.stage2',
  'stage2',
  'BOOTIF',
  'inst.syslog',
  'syslog',
  'inst.ks.sendmac',
  'kssendmac',
  'initrd',
];
const KERNEL_WORD = /^[A-Za-z0-9_.,:/=@+%~?&[\]-]+$/;
/**
 * Kernel arguments: words separated by spaces, each of letters, digits and _ . , : / = @ + % ~ ? & [ ] -.
 * Nothing GRUB, iPXE or a shell reads as syntax survives (; # { } $ quotes backslash, && and ||).
 */
export const checkKernelArgs: Check = grammar(1024, (v) => {
  for (const word of v.split(' ').filter(Boolean)) {
    if (!KERNEL_WORD.test(word)) {
      const bad = [...word].find((c) => !KERNEL_WORD.test(c));
      return `kernel argument "${word}" contains "${bad}": arguments are words of letters, digits and _ . , : / = @ + % ~ ? & [ ] - separated by spaces`;
    }
    if (/&&|\|\|/.test(word)) return `kernel argument "${word}" contains "&&" or "||"`;
    const key = word.split('=')[0];
    if (RACKBOOT_KERNEL_KEYS.includes(key))
      return `kernel argument "${key}" is set by rackboot itself and cannot be given here`;
  }
  return undefined;
});

const SSH_KEY =
  /^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^"'`$\\]*)?$/;
export const checkSshKey: Check = grammar(
  16384,
  matches(
    SSH_KEY,
    'must be one OpenSSH public key line: type, base64, optional comment without quotes, $, ` or backslashes',
  ),
);

/** Whole disks as Anaconda names them: sdX, vdX, hdX, xvdX, nvmeNnM, mmcblkN, or a /dev/disk/by-id or by-path link. */
const DISK_SPEC =
  /^(\/dev\/)?((sd|vd|xvd)[a-z]{1,3}|hd[a-z]|nvme\d{1,3}n\d{1,3}|mmcblk\d{1,3}|disk\/by-(id|path)\/[A-Za-z0-9._:+@-]{1,200})$/;
export const checkDiskSpec: Check = grammar(
  220,
  matches(
    DISK_SPEC,
    'must be a whole disk such as sda, vdb, nvme0n1, disk/by-id/wwn-0x5000c500a1b2c3d4 or disk/by-path/pci-0000:00:1f.2-ata-1',
  ),
);

export const checkTimezone: Check = grammar(
  64,
  matches(/^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/, 'must be a tz database name such as America/Phoenix'),
);
export const checkKeyboard: Check = grammar(
  64,
  matches(/^[A-Za-z0-9_-]+$/, 'must be a keyboard layout such as us, de or de-nodeadkeys'),
);
export const checkLang: Check = grammar(
  64,
  matches(/^[A-Za-z]{2,3}(_[A-Za-z]{2})?(\.[A-Za-z0-9-]+)?(@[A-Za-z0-9]+)?$/, 'must be a locale such as en_US.UTF-8'),
);
export const checkMountOptions: Check = grammar(
  256,
  matches(/^[A-Za-z0-9=_.-]+(,[A-Za-z0-9=_.-]+)*$/, 'must be comma-separated mount options such as defaults,discard'),
);
export const checkMountPoint: Check = grammar(
  256,
  matches(/^\/([A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*)?$/, 'must be an absolute mount point such as /var/log'),
  (v) => (v.split('/').includes('..') ? 'must not contain ".."' : undefined),
);
export const checkLvmName: Check = grammar(
  64,
  matches(/^[A-Za-z0-9_.+][A-Za-z0-9_.+-]*$/, 'must be an LVM name (letters, digits, _ . + -, not starting with -)'),
);
export const checkFsType: Check = grammar(16, matches(/^[a-z0-9]+$/, 'must be a file system type such as xfs or ext4'));
export const checkXccdfProfile: Check = grammar(
  256,
  matches(/^xccdf_[A-Za-z0-9_.-]+$/, 'must be an XCCDF profile id such as xccdf_org.ssgproject.content_profile_stig'),
);
export const checkDescription: Check = grammar(500);

/** Kickstart section keywords: a snippet line starting with one would end %post early or open another section. */
export const KICKSTART_SECTION_KEYWORDS = [
  '%end',
  '%packages',
  '%include',
  '%pre',
  '%post',
  '%addon',
  '%onerror',
  '%anaconda',
  '%ksappend',
  '%traceback',
  '%pre-install',
];

/**
 * Shell snippets (%post): lines of text; tab and line feed are the only control characters. A line whose first
 * non-blank character is "%" is refused: pykickstart takes "%end", "%include", "%ksappend" and any section name there
 * as kickstart syntax, even inside %post (parser.py _readSection), and nothing else in a shell script needs one.
 */
export const checkSnippet: Check = (value) => {
  const cp = forbiddenChar(value, [0x09, 0x0a]);
  if (cp !== undefined) return `character ${describeChar(cp)} is not allowed (only tab and line feed in snippets)`;
  if (value.length > 65536) return `is ${value.length} characters long; at most 65536 are allowed`;
  const lines = value.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const first = lines[i].trimStart();
    if (first.startsWith('%')) {
      const word = first.split(/\s/)[0];
      const known = KICKSTART_SECTION_KEYWORDS.includes(word)
        ? `"${word}" is a kickstart section keyword`
        : `"${word}" would be read as kickstart syntax`;
      return `line ${i + 1} starts with "%": ${known}; start the line with a command instead (e.g. printf '%s\\n' '${word}')`;
    }
  }
  return undefined;
};

/** A template file name (profile field `kickstart`, a file of a templates directory): a plain name, never a path. */
export const checkTemplateName: Check = grammar(
  100,
  (v) =>
    v.includes('/') || v.includes('\\')
      ? 'is a path: name a file of templates/kickstart/ (or of your templatesDir), such as my-rhvh.ks.eta'
      : undefined,
  matches(
    /^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\.eta$/,
    'must be a file name of letters, digits, "-", "_" and "." ending in .eta, such as my-rhvh.ks.eta',
  ),
);
