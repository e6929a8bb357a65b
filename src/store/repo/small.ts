// The small tables on either store: audit, settings, discovered machines, images.
import type { Mac } from '../../net/mac.ts';
import type { AuditEntry } from '../audit.ts';
import type { DiscoveredMachine, DiscoveredRow } from '../discovered.ts';
import { DISCOVERED_MAX_ROWS } from '../discovered.ts';
import type { ImageRecord, ImageRow } from '../../images/store.ts';
import { imageFromRow } from '../../images/store.ts';
import type { ImageFiles } from '../../profiles/schema.ts';
import { maskDeep } from '../../hosts/policy.ts';
import type { Sql } from '../sql.ts';
import type { ChangeFeed } from '../changes-feed.ts';

/** Who changed what, when; every record masked before it is stored (see src/store/audit.ts). */
export class AuditRepo {
  constructor(
    private readonly sql: Sql,
    private readonly now: () => number = Date.now,
  ) {}
  async record(actor: string, action: string, target: string, diff?: unknown): Promise<void> {
    await this.sql.run('INSERT INTO audit (at, actor, action, target, diff) VALUES (?, ?, ?, ?, ?)', [
      this.now(),
      actor,
      action,
      target,
      diff === undefined ? null : JSON.stringify(maskDeep(diff)),
    ]);
  }
  recordChange(actor: string, action: string, target: string, before?: object, after?: object): Promise<void> {
    return this.record(actor, action, target, { ...(before ? { before } : {}), ...(after ? { after } : {}) });
  }
  async recent(limit = 100): Promise<AuditEntry[]> {
    const rows = await this.sql.all<AuditEntry & { diff: string | null }>(
      'SELECT id, at, actor, action, target, diff FROM audit ORDER BY id DESC LIMIT ?',
      [limit],
    );
    return rows.map((r) =>
      r.diff === null ? { id: r.id, at: r.at, actor: r.actor, action: r.action, target: r.target } : r,
    );
  }
}

const TECH_PARAMS_KEY = 'tech_params';

/** Settings an admin changes at run time: every node and restart sees them. */
export class SettingsRepo {
  constructor(
    private readonly sql: Sql,
    private readonly feed: ChangeFeed,
  ) {}
  async get(key: string): Promise<string | undefined> {
    return (await this.sql.get<{ value: string }>('SELECT value FROM settings WHERE key = ?', [key]))?.value;
  }
  async put(key: string, value: string): Promise<void> {
    await this.sql.run(
      'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      [key, value],
    );
    await this.feed.publish({ kind: 'settings' });
  }
  /** Sets `key` to `value` unless it is set already; returns the value that holds (first writer wins across nodes). */
  async putIfAbsent(key: string, value: string): Promise<string> {
    await this.sql.run('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING', [key, value]);
    return (await this.get(key))!;
  }
  /** Host parameters a tech may set (src/hosts/policy.ts checks the list); empty by default. */
  async techParams(): Promise<string[]> {
    const raw = await this.get(TECH_PARAMS_KEY);
    if (raw === undefined) return [];
    try {
      const v = JSON.parse(raw) as unknown;
      return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
    } catch {
      return [];
    }
  }
  /** `list` must have passed checkTechParamList(). */
  setTechParams(list: readonly string[]): Promise<void> {
    return this.put(TECH_PARAMS_KEY, JSON.stringify(list));
  }
}

/** Pruning scans the table: once per this many sightings, not per packet. */
const DISCOVERED_PRUNE_EVERY = 100;

/** Machines that PXE-booted but are not hosts, bounded to `maxRows` (least recently seen go first). */
export class DiscoveredRepo {
  private sincePrune = 0;
  constructor(
    private readonly sql: Sql,
    private readonly maxRows = DISCOVERED_MAX_ROWS,
    private readonly now: () => number = Date.now,
  ) {}
  async seen(m: DiscoveredMachine): Promise<void> {
    const now = this.now();
    await this.sql.run(
      `INSERT INTO discovered (mac, arch, uuid, ipxe, ip, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (mac) DO UPDATE SET arch = excluded.arch, uuid = COALESCE(excluded.uuid, discovered.uuid),
         ipxe = excluded.ipxe, ip = COALESCE(excluded.ip, discovered.ip), last_seen = excluded.last_seen`,
      [m.mac, m.arch ?? null, m.uuid ?? null, m.ipxe ? 1 : 0, m.ip ?? null, now, now],
    );
    if (++this.sincePrune >= DISCOVERED_PRUNE_EVERY) await this.prune();
  }
  async prune(): Promise<void> {
    this.sincePrune = 0;
    // NOT IN the newest maxRows: the same in both dialects (SQLite's LIMIT -1 OFFSET is not PostgreSQL's).
    await this.sql.run(
      'DELETE FROM discovered WHERE mac NOT IN (SELECT mac FROM discovered ORDER BY last_seen DESC, mac LIMIT ?)',
      [this.maxRows],
    );
  }
  list(limit = 1000): Promise<DiscoveredRow[]> {
    return this.sql.all<DiscoveredRow>(
      'SELECT mac, arch, uuid, ipxe, ip, first_seen AS "firstSeen", last_seen AS "lastSeen" FROM discovered ORDER BY last_seen DESC LIMIT ?',
      [limit],
    );
  }
  async forget(mac: Mac): Promise<void> {
    await this.sql.run('DELETE FROM discovered WHERE mac = ?', [mac]);
  }
}

/** Imported images; a row means "complete on disk" (see src/images/store.ts). */
export class ImageRepo {
  constructor(
    private readonly sql: Sql,
    private readonly feed: ChangeFeed,
  ) {}
  async list(): Promise<ImageRecord[]> {
    return (await this.sql.all<ImageRow>('SELECT * FROM images ORDER BY name')).map(imageFromRow);
  }
  async get(name: string): Promise<ImageRecord | undefined> {
    const r = await this.sql.get<ImageRow>('SELECT * FROM images WHERE name = ?', [name]);
    return r && imageFromRow(r);
  }
  /** What a profile's `image: NAME` turns into. */
  async resolve(name: string): Promise<ImageFiles | undefined> {
    const r = await this.get(name);
    return r && { kernel: r.kernel, initrd: r.initrd, stage2: r.stage2, liveimg: r.liveimg };
  }
  async findBySource(sha256: string): Promise<ImageRecord[]> {
    return (await this.sql.all<ImageRow>('SELECT * FROM images WHERE source_sha256 = ? ORDER BY name', [sha256])).map(
      imageFromRow,
    );
  }
  /** Rejects on a duplicate name (PRIMARY KEY): the constraint is the last guard against a race. */
  async insert(r: ImageRecord, sql = this.sql): Promise<void> {
    await sql.run(
      `INSERT INTO images (name, version, source_sha256, kernel, initrd, stage2, liveimg, files, imported_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        r.name,
        r.version,
        r.sourceSha256,
        r.kernel,
        r.initrd,
        r.stage2,
        r.liveimg,
        JSON.stringify(r.files),
        r.importedAt,
      ],
    );
    if (sql === this.sql) await this.feed.publish({ kind: 'image' });
  }
  /** One transaction: readers see the old image or the new one, never none. */
  async replace(r: ImageRecord): Promise<void> {
    await this.sql.tx(async (sql) => {
      await sql.run('DELETE FROM images WHERE name = ?', [r.name]);
      await this.insert(r, sql);
    });
    await this.feed.publish({ kind: 'image' });
  }
  async remove(name: string): Promise<boolean> {
    const n = await this.sql.run('DELETE FROM images WHERE name = ?', [name]);
    if (n) await this.feed.publish({ kind: 'image' });
    return n > 0;
  }
}
