// Which per-host config a loader is asking for, from the file name it requests (TFTP or HTTP).
// pxelinux: pxelinux.cfg/<uuid>, 01-<mac>, <hex ip> shortened one digit at a time, default.
// GRUB 2 (net boot): grub.cfg-01-<mac>, grub.cfg-<hex ip> shortened, grub.cfg, in its prefix dir.
//
// The generic names, by the GRUB that asks for them (names as the server sees them, leading "/" removed):
//   grub-mknetdir core.efi (prefix /boot/grub): boot/grub/grub.cfg-01-<mac> first (tftp-requests-ovmf-grub.pcap),
//     then boot/grub/grub.cfg
//   Debian/Ubuntu signed grubnetx64.efi (prefix /grub, built-in config "source $prefix/grub.cfg"):
//     "[ -e $prefix/x86_64-efi/grub.cfg ]" (always false on tftp in GRUB 2.06), then grub/grub.cfg; never a per-MAC name
//   RHEL/shim grubx64.efi (prefix = the directory it was loaded from): <dir>/grub.cfg-01-<mac>, then
//     <dir>/grub.cfg, e.g. EFI/BOOT/grub.cfg or EFI/redhat/grub.cfg
//   a GRUB loaded from the TFTP root: grub.cfg
// Any directory counts, because a loader's prefix is wherever an operator or `loaders sync` put it.
import { parseMac, type Mac } from '../net/mac.ts';

export type ConfigKey =
  { kind: 'mac'; mac: Mac } | { kind: 'uuid'; uuid: string } | { kind: 'ip'; hex: string } | { kind: 'default' };

export interface ConfigRequest {
  loader: 'pxelinux' | 'grub';
  key: ConfigKey;
  /** The normalised name asked for, for the timeline. */
  name: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HEX_IP = /^[0-9A-Fa-f]{1,8}$/;
const ETHER_NAME = /^01(-[0-9A-Fa-f]{2}){6}$/;

function keyOf(name: string): ConfigKey | undefined {
  if (name === 'default') return { kind: 'default' };
  if (UUID.test(name)) return { kind: 'uuid', uuid: name.toLowerCase() };
  // "01-" is the ARP hardware type (Ethernet) before the six octets; "01-aa-bb-cc-dd-ee" alone is not a MAC name.
  if (/^01-/.test(name)) {
    const mac = ETHER_NAME.test(name) ? parseMac(name.slice(3)) : undefined;
    return mac ? { kind: 'mac', mac } : undefined;
  }
  if (HEX_IP.test(name)) return { kind: 'ip', hex: name.toUpperCase() };
  return undefined;
}

/** `path` is normalised (no leading slash). Anything else is not a config request (undefined). */
export function parseConfigPath(path: string): ConfigRequest | undefined {
  const slash = path.lastIndexOf('/');
  const base = path.slice(slash + 1);
  const dir = slash < 0 ? '' : path.slice(0, slash);
  if (dir === 'pxelinux.cfg' || dir.endsWith('/pxelinux.cfg')) {
    const key = keyOf(base);
    return key && { loader: 'pxelinux', key, name: path };
  }
  if (base === 'grub.cfg') return { loader: 'grub', key: { kind: 'default' }, name: path };
  if (base.startsWith('grub.cfg-')) {
    const key = keyOf(base.slice('grub.cfg-'.length));
    return key && key.kind !== 'default' ? { loader: 'grub', key, name: path } : undefined;
  }
  return undefined;
}
