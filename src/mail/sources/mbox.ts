// mbox: messages one after another, each starting with a "From " line after a blank line (or at the
// start of the file). Lines of a body that begin with "From " were escaped as ">From " when written
// (mboxrd escapes ">From " too, as ">>From "); reading removes one ">" from each such line. A body
// line "From " that was never escaped starts a new message, as in every mbox reader: the format
// cannot tell.
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { SourceError, type MailSource, type MessageRef } from './source.js';

/** Byte ranges [start, end) of the messages (From_ line included) in an mbox file. */
export function splitMbox(buf: Uint8Array): [number, number][] {
  const starts: number[] = [];
  const isFrom = (i: number): boolean => buf[i] === 0x46 && buf[i + 1] === 0x72 && buf[i + 2] === 0x6f && buf[i + 3] === 0x6d && buf[i + 4] === 0x20;
  if (isFrom(0)) starts.push(0);
  for (let i = buf.indexOf(0x0a); i >= 0 && i + 1 < buf.length; i = buf.indexOf(0x0a, i + 1)) {
    // "From " at a line start after an empty line (or a line start at all when the file has no blank
    // line before it: some writers omit it).
    if (isFrom(i + 1) && (i === 0 || buf[i - 1] === 0x0a || (buf[i - 1] === 0x0d && buf[i - 2] === 0x0a))) starts.push(i + 1);
  }
  return starts.map((s, k) => [s, k + 1 < starts.length ? starts[k + 1] : buf.length]);
}

/** One message's bytes without its From_ line and with ">From " escaping undone. */
export function unescapeMboxMessage(chunk: Uint8Array): Uint8Array {
  const nl = chunk.indexOf(0x0a);
  const text = Buffer.from(chunk.subarray(nl < 0 ? chunk.length : nl + 1)).toString('latin1');
  const body = text.replace(/^>(>*From )/gm, '$1').replace(/\r?\n$/, '\n');
  return Buffer.from(body, 'latin1');
}

export class MboxSource implements MailSource {
  readonly kind = 'mbox';
  readonly uri: string;
  private buf: Uint8Array | null = null;
  private readonly ranges = new Map<string, [number, number]>();

  readonly path: string;

  constructor(path: string) {
    // Absolute: the state database knows a source by its URI, however the path was written.
    this.path = resolve(path);
    this.uri = `mbox:${this.path}`;
  }

  async open(): Promise<void> {
    const s = await stat(this.path).catch(() => null);
    if (s === null || !s.isFile()) throw new SourceError(`mbox:${this.path}: no such file`);
    this.buf = await readFile(this.path);
    if (this.buf.length > 0 && splitMbox(this.buf).length === 0) throw new SourceError(`mbox:${this.path}: not an mbox file (no line starts with "From ")`);
  }

  async folders(): Promise<string[]> {
    return ['INBOX'];
  }

  async list(folder: string): Promise<MessageRef[]> {
    const refs: MessageRef[] = [];
    for (const [start, end] of splitMbox(this.buf!)) {
      // Offset and content together: appending mail keeps keys, rewriting the file changes them.
      const key = `${start}:${createHash('sha1').update(this.buf!.subarray(start, end)).digest('hex').slice(0, 16)}`;
      this.ranges.set(key, [start, end]);
      refs.push({ folder, key, location: `${this.path}#${start}` });
    }
    return refs;
  }

  async read(ref: MessageRef): Promise<Uint8Array> {
    const r = this.ranges.get(ref.key);
    if (r === undefined) throw new SourceError(`${this.uri}: no message at ${ref.key}`);
    return unescapeMboxMessage(this.buf!.subarray(r[0], r[1]));
  }

  async close(): Promise<void> {
    this.buf = null;
  }
}
