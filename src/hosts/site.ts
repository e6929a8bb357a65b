// Site and node names: the grammar a --site flag, a host's site field, a CSV column and a DHCP subnet's
// site all share. A site name goes into URLs, logs and SQL parameters, never into boot syntax.

/** A DNS label, lower case: "dc1", "paris-b". */
const SITE = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;
/** Printable, no spaces or slashes: "rack-a.example.com:8080". */
const NODE_ID = /^[A-Za-z0-9](?:[A-Za-z0-9._:-]{0,62}[A-Za-z0-9])?$/;

/** undefined when `value` is a site name, else the error naming `field`. */
export function siteProblem(value: string, field: string): string | undefined {
  if (SITE.test(value)) return undefined;
  const shown = JSON.stringify(value.length > 40 ? value.slice(0, 40) + '...' : value);
  return `${field} ${shown} is not a site name: 1-32 lower-case letters, digits and dashes, such as dc1 or paris-b`;
}

export function nodeIdProblem(value: string, field: string): string | undefined {
  if (NODE_ID.test(value)) return undefined;
  const shown = JSON.stringify(value.length > 40 ? value.slice(0, 40) + '...' : value);
  return `${field} ${shown} is not a node id: 1-64 letters, digits, dots, dashes, colons or underscores, such as rack-a:8080`;
}

/** Whether a node of `nodeSite` serves a host or subnet of `site`: no site on either side means every site. */
export function servesSite(nodeSite: string | undefined, site: string | undefined): boolean {
  return nodeSite === undefined || site === undefined || site === nodeSite;
}
