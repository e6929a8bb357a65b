// What a host record needs before it can be built, beyond its own field grammar: checked when the host is
// added (rack import, forms) so it is refused there, with the field, rather than at Build. Pure.
import { applyHostParams, type LoadedProfile } from '../profiles/load.ts';

/** Problems as "<field>: <reason>"; none when the profile is unknown or the parameters do not apply (reported elsewhere). */
export function buildReadinessProblems(
  loaded: LoadedProfile | undefined,
  host: { ip?: string; netmask?: string; params: Readonly<Record<string, string>> },
): string[] {
  if (!loaded) return [];
  const effective = applyHostParams(loaded, { ...host.params }, 'x');
  if (!effective.ok) return [];
  const problems: string[] = [];
  if (effective.profile.network.mode === 'static') {
    // The kickstart's network line needs both (src/render/render.ts refuses to render without them).
    const why = `profile ${loaded.name} uses a static network (network.mode: static), so the host needs`;
    if (!host.ip) problems.push(`ip: ${why} an address; set ip, or use a DHCP profile`);
    if (!host.netmask) problems.push(`netmask: ${why} a netmask (e.g. 255.255.255.0)`);
  }
  return problems;
}
