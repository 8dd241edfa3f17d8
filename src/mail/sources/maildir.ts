// Maildir (and Dovecot's Maildir++): messages are files in new/ and cur/ (tmp/ is for deliveries in
// progress and is never read); subfolders are directories named ".Parent.Child" beside them. A file
// name is "<unique>[:2,<flags>]": the unique part is the message's key, the flags (ASCII-sorted
// letters: D draft, F flagged, P passed, R replied, S seen, T trashed) change as mail is read.
import { mkdir, readdir, readFile, rename, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SourceError, type MailSource, type MessageRef } from './source.js';

const INBOX = 'INBOX';

export class MaildirSource implements MailSource {
  readonly kind = 'maildir';
  readonly uri: string;
  /** key → current file path, per folder (names change when flags do). */
  private readonly files = new Map<string, Map<string, string>>();

  readonly root: string;

  constructor(root: string) {
    // Absolute: the state database knows a source by its URI, however the path was written.
    this.root = resolve(root);
    this.uri = `maildir:${this.root}`;
  }

  async open(): Promise<void> {
    const s = await stat(this.root).catch(() => null);
    if (s === null || !s.isDirectory()) throw new SourceError(`maildir:${this.root}: no such directory`);
    const cur = await stat(join(this.root, 'cur')).catch(() => null);
    const nw = await stat(join(this.root, 'new')).catch(() => null);
    if (cur === null && nw === null) throw new SourceError(`maildir:${this.root}: not a Maildir (it has neither cur/ nor new/)`);
  }

  private dir(folder: string): string {
    return folder === INBOX ? this.root : join(this.root, `.${folder.split('/').join('.')}`);
  }

  async folders(): Promise<string[]> {
    const names = await readdir(this.root, { withFileTypes: true });
    const subs = names.filter((d) => d.isDirectory() && d.name.startsWith('.') && d.name.length > 1).map((d) => d.name.slice(1).split('.').join('/'));
    return [INBOX, ...subs.sort()];
  }

  async list(folder: string): Promise<MessageRef[]> {
    const base = this.dir(folder);
    const byKey = new Map<string, string>();
    for (const sub of ['new', 'cur']) {
      const names = await readdir(join(base, sub)).catch(() => [] as string[]);
      for (const name of names.sort()) {
        if (name.startsWith('.')) continue;
        byKey.set(name.split(':')[0], join(base, sub, name));
      }
    }
    this.files.set(folder, byKey);
    return [...byKey].map(([key, location]) => ({ folder, key, location }));
  }

  private path(ref: MessageRef): string {
    const p = this.files.get(ref.folder)?.get(ref.key);
    if (p === undefined) throw new SourceError(`${this.uri}: no message ${ref.key} in ${ref.folder} (list the folder first)`);
    return p;
  }

  async read(ref: MessageRef): Promise<Uint8Array> {
    return readFile(this.path(ref));
  }

  async move(ref: MessageRef, target: string): Promise<void> {
    const from = this.path(ref);
    const dir = this.dir(target);
    for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(dir, sub), { recursive: true });
    const name = from.split('/').pop()!;
    const sub = from.includes('/new/') ? 'new' : 'cur';
    const to = join(dir, sub, name);
    await rename(from, to); // same file system: atomic, never a copy that could be lost half way
    this.files.get(ref.folder)?.delete(ref.key);
    if (!this.files.has(target)) this.files.set(target, new Map());
    this.files.get(target)!.set(ref.key, to);
  }

  async flag(ref: MessageRef, flags: string[]): Promise<void> {
    // Maildir has letters for the standard flags only; keywords would need Dovecot's keyword file.
    const letters: Record<string, string> = { '\\Seen': 'S', '\\Flagged': 'F', '\\Answered': 'R', '\\Draft': 'D' };
    const want = flags.map((f) => letters[f]).filter((l) => l !== undefined);
    if (want.length === 0) return;
    const from = this.path(ref);
    const name = from.split('/').pop()!;
    const [unique, info = '2,'] = name.split(':');
    const have = info.startsWith('2,') ? info.slice(2) : '';
    const merged = [...new Set([...have, ...want])].sort().join('');
    const dir = join(from, '..', '..', 'cur'); // a message with flags lives in cur/
    const to = join(dir, `${unique}:2,${merged}`);
    if (to !== from) await rename(from, to);
    this.files.get(ref.folder)!.set(ref.key, to);
  }

  async close(): Promise<void> {}
}
