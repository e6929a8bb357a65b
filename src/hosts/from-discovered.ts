// "Make this a host": a machine seen booting (src/store/discovered.ts) becomes a host record in one form.
// The same checks as every other way in (field grammar, taken MAC/IP/hostname, parameters, what Build needs). Pure.
import { checkHostInput } from './input.ts';
import type { ImportLookups } from './csv.ts';
import type { HostFields } from '../store/hosts.ts';
import type { DiscoveredRow } from '../store/discovered.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The form's fields; everything else comes from what was seen. */
export const FROM_DISCOVERED_FIELDS = ['hostname', 'profile', 'rack', 'position', 'ip', 'netmask', 'gateway'] as const;
export type FromDiscoveredForm = Partial<Record<(typeof FROM_DISCOVERED_FIELDS)[number], string>>;

export type FromDiscoveredCheck =
  { ok: true; host: HostFields } | { ok: false; status: 400 | 403 | 404 | 409; errors: string[] };

export function checkFromDiscovered(
  seen: DiscoveredRow | undefined,
  form: FromDiscoveredForm,
  lookups: ImportLookups,
): FromDiscoveredCheck {
  if (!seen) return { ok: false, status: 404, errors: ['this machine is not (or no longer) in the discovered list'] };
  if (lookups.macTaken(seen.mac)) return { ok: false, status: 409, errors: [`mac: ${seen.mac} is already a host`] };
  const r = checkHostInput(
    {
      mac: seen.mac,
      // A UUID the firmware sent in a shape the host record refuses is left out, not an error the form cannot fix.
      uuid: seen.uuid && UUID.test(seen.uuid) ? seen.uuid : undefined,
      hostname: form.hostname,
      profile: form.profile,
      rack: form.rack,
      position: form.position,
      ip: form.ip,
      netmask: form.netmask,
      gateway: form.gateway,
      params: {},
    },
    lookups.profileExists,
  );
  if (!r.ok) return { ok: false, status: 400, errors: r.errors };
  const errors: string[] = [];
  if (r.host.ip && lookups.ipTaken(r.host.ip)) errors.push(`ip: ${r.host.ip} already belongs to an existing host`);
  if (lookups.hostnameTaken(r.host.hostname))
    errors.push(`hostname: ${r.host.hostname} already belongs to an existing host`);
  const refused = lookups.hostProblems?.(r.host);
  if (refused) return { ok: false, status: refused.status, errors: [...errors, ...refused.errors] };
  errors.push(...(lookups.buildProblems?.(r.host) ?? []));
  return errors.length ? { ok: false, status: 400, errors } : { ok: true, host: r.host };
}

/** RFC 4578 section 2.1 client architecture (DHCP option 93), as a tech reads it. */
export function archLabel(arch: number | null | undefined): string {
  if (arch === null || arch === undefined) return 'unknown';
  const names: Record<number, string> = {
    0: 'BIOS x86',
    6: 'UEFI x86 (32-bit)',
    7: 'UEFI x64',
    9: 'UEFI x64',
    10: 'UEFI ARM32',
    11: 'UEFI ARM64',
    15: 'UEFI x86 HTTP',
    16: 'UEFI x64 HTTP',
    19: 'UEFI ARM64 HTTP',
  };
  return `${names[arch] ?? 'other'} (${arch})`;
}
