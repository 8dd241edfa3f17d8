// A folder of .eml files (any depth), or one .eml file: each file is one raw message.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { SourceError, type MailSource, type MessageRef } from './source.js';

export class EmlSource implements MailSource {
  readonly kind = 'eml';
  readonly uri: string;
  private single = false;

  readonly path: string;

  constructor(path: string) {
    // Absolute: the state database knows a source by its URI, however the path was written.
    this.path = resolve(path);
    this.uri = `eml:${this.path}`;
  }

  async open(): Promise<void> {
    const s = await stat(this.path).catch(() => null);
    if (s === null) throw new SourceError(`eml:${this.path}: no such file or directory`);
    this.single = s.isFile();
  }

  async folders(): Promise<string[]> {
    return ['INBOX'];
  }

  async list(folder: string): Promise<MessageRef[]> {
    if (this.single) return [{ folder, key: this.path.split('/').pop()!, location: this.path }];
    const out: MessageRef[] = [];
    const walk = async (dir: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true });
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const e of entries) {
        const p = join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.isFile() && /\.eml$/i.test(e.name)) out.push({ folder, key: relative(this.path, p), location: p });
      }
    };
    await walk(this.path);
    return out;
  }

  async read(ref: MessageRef): Promise<Uint8Array> {
    return readFile(ref.location);
  }

  async close(): Promise<void> {}
}
