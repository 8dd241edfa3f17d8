// The app's memory between runs, in SQLite (better-sqlite3): one row per message ever triaged (keyed by
// source, folder and the source's stable key, so IMAP keys carry UIDVALIDITY), the corrections a
// person made, and what --apply did. Each result is committed the moment it exists, so a run killed
// at any point resumes with exactly the messages that have no row, and none is triaged twice.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { TriageRecord } from './triage.js';

export interface Correction {
  source: string;
  folder: string;
  key: string;
  from_address: string;
  old_category: string | null;
  new_category: string;
  created_at: string;
}

export class MailState {
  private readonly db: Database.Database;

  constructor(readonly path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    try {
      this.db = new Database(path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.exec(`
        CREATE TABLE IF NOT EXISTS results (
          source TEXT NOT NULL, folder TEXT NOT NULL, key TEXT NOT NULL,
          id TEXT NOT NULL, status TEXT NOT NULL, category TEXT, record TEXT NOT NULL, processed_at TEXT NOT NULL,
          PRIMARY KEY (source, folder, key));
        CREATE TABLE IF NOT EXISTS corrections (
          n INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, folder TEXT NOT NULL, key TEXT NOT NULL,
          from_address TEXT NOT NULL, old_category TEXT, new_category TEXT NOT NULL, created_at TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS applied (
          source TEXT NOT NULL, folder TEXT NOT NULL, key TEXT NOT NULL, action TEXT NOT NULL, applied_at TEXT NOT NULL,
          PRIMARY KEY (source, folder, key, action));`);
    } catch (err) {
      throw new Error(`state database ${path}: ${(err as Error).message}`);
    }
  }

  /** Keys of a folder already triaged (with `retryErrors`, errored ones count as not triaged). */
  seen(source: string, folder: string, retryErrors = false): Set<string> {
    const rows = this.db.prepare(`SELECT key FROM results WHERE source = ? AND folder = ?${retryErrors ? " AND status != 'error'" : ''}`).all(source, folder) as { key: string }[];
    return new Set(rows.map((r) => r.key));
  }

  put(rec: TriageRecord): void {
    this.db
      .prepare('INSERT OR REPLACE INTO results (source, folder, key, id, status, category, record, processed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(rec.source, rec.folder, rec.key, rec.id, rec.status, rec.category, JSON.stringify(rec), new Date().toISOString());
  }

  get(source: string, folder: string, key: string): TriageRecord | null {
    const row = this.db.prepare('SELECT record FROM results WHERE source = ? AND folder = ? AND key = ?').get(source, folder, key) as { record: string } | undefined;
    return row ? (JSON.parse(row.record) as TriageRecord) : null;
  }

  /** Every record (of one source, when given), oldest message first. */
  records(source?: string): TriageRecord[] {
    const rows = (source === undefined ? this.db.prepare('SELECT record FROM results').all() : this.db.prepare('SELECT record FROM results WHERE source = ?').all(source)) as { record: string }[];
    const recs = rows.map((r) => JSON.parse(r.record) as TriageRecord);
    return recs.sort((a, b) => (a.date ?? '').localeCompare(b.date ?? '') || a.key.localeCompare(b.key));
  }

  /** A person's correction: stored, applied to the record, and a sender rule for the next run. */
  correct(source: string, folder: string, key: string, category: string): TriageRecord {
    const rec = this.get(source, folder, key);
    if (rec === null) throw new Error(`no triaged message ${source} ${folder} ${key}`);
    const tx = this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO corrections (source, folder, key, from_address, old_category, new_category, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(source, folder, key, rec.from.address, rec.category, category, new Date().toISOString());
      const updated: TriageRecord = { ...rec, category, status: 'ok', decided_by: 'correction', error: null };
      this.put(updated);
      return updated;
    });
    return tx();
  }

  corrections(): Correction[] {
    return this.db.prepare('SELECT source, folder, key, from_address, old_category, new_category, created_at FROM corrections ORDER BY n').all() as Correction[];
  }

  /** Sender address → the category of its latest correction (the rules engine's "known senders"). */
  senders(): Map<string, string> {
    const out = new Map<string, string>();
    for (const c of this.corrections()) if (c.from_address !== '') out.set(c.from_address, c.new_category);
    return out;
  }

  wasApplied(source: string, folder: string, key: string, action: string): boolean {
    return this.db.prepare('SELECT 1 FROM applied WHERE source = ? AND folder = ? AND key = ? AND action = ?').get(source, folder, key, action) !== undefined;
  }

  markApplied(source: string, folder: string, key: string, action: string): void {
    this.db.prepare('INSERT OR REPLACE INTO applied (source, folder, key, action, applied_at) VALUES (?, ?, ?, ?, ?)').run(source, folder, key, action, new Date().toISOString());
  }

  close(): void {
    this.db.close();
  }
}
