// Crash-safe output. A reader (or the next run after a crash or power cut) must only ever see the
// old contents or the complete new ones, never a torn mix: we write a temporary sibling, fsync it,
// rename it over the target (atomic within one POSIX filesystem), then fsync the directory so the
// rename itself is durable.
//
// Temporaries are hidden siblings named `.nanoseek-tmp-<name>.<pid>.<random>` (ignored by git).
// A crashed writer leaves them behind; `cleanStaleTemps` removes those whose process is gone.
// One writer per target at a time is assumed: concurrent savers of the same path race on the swap.
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

const TEMP_PREFIX = '.nanoseek-tmp-';
const TEMP_PATTERN = /^\.nanoseek-tmp-.+\.(\d+)\.[0-9a-f]{8}$/;

/** Temporaries this process is still writing: in a container every run may get the same pid. */
const ownTemps = new Set<string>();

function tempPathFor(target: string): string {
  return join(dirname(target), `${TEMP_PREFIX}${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}`);
}

/**
 * Where `replaceDirAtomic` parks the previous directory during the swap. If the process dies
 * between its two renames, the target is missing and this holds the last complete version.
 */
export function backupPathFor(dir: string): string {
  const abs = resolve(dir);
  return join(dirname(abs), `${TEMP_PREFIX}${basename(abs)}.old`);
}

function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return false;
    throw err;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    // Windows cannot open directories and some filesystems refuse fsync on them; the rename
    // is then as durable as that platform allows.
    const code = errorCode(err);
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EACCES' && code !== 'EINVAL') throw err;
  } finally {
    await fh?.close();
  }
}

/** fsync every file and directory below `dir`, whoever wrote them (copyFile, plain writes…). */
async function fsyncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await fsyncTree(path);
    else if (entry.isFile()) {
      const fh = await open(path, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
  }
  await fsyncDir(dir);
}

/**
 * Atomically create or replace the file at `path` with whatever `write` puts into the handle
 * (for outputs too large to build in memory). Parent directories are created as needed.
 */
export async function writeStreamAtomic(path: string, write: (fh: FileHandle) => Promise<void>): Promise<void> {
  const target = resolve(path);
  await mkdir(dirname(target), { recursive: true });
  const tmp = tempPathFor(target);
  ownTemps.add(tmp);
  try {
    const fh = await open(tmp, 'wx');
    try {
      await write(fh);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  } finally {
    ownTemps.delete(tmp);
  }
  await fsyncDir(dirname(target));
}

/**
 * Atomically write a stream of text chunks (e.g. JSONL records or a generated corpus), batching them
 * into ~1 MiB writes. Returns the number of bytes written.
 */
export async function writeChunksAtomic(path: string, chunks: Iterable<string> | AsyncIterable<string>): Promise<number> {
  let bytes = 0;
  await writeStreamAtomic(path, async (fh) => {
    let pending: string[] = [];
    let pendingBytes = 0;
    const flush = async (): Promise<void> => {
      await fh.writeFile(pending.join(''));
      bytes += pendingBytes;
      pending = [];
      pendingBytes = 0;
    };
    for await (const chunk of chunks) {
      pending.push(chunk);
      pendingBytes += Buffer.byteLength(chunk);
      if (pendingBytes >= 1 << 20) await flush();
    }
    await flush();
  });
  return bytes;
}

/** Atomically create or replace a file. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await writeStreamAtomic(path, (fh) => fh.writeFile(data));
}

/** Atomically write `value` as pretty-printed JSON with a trailing newline. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errorCode(err) === 'EPERM'; // exists, just not ours to signal
  }
}

/**
 * Remove temporaries in `dir` left by writers that died (same machine assumed: pids are checked
 * locally). Returns the removed paths.
 */
export async function cleanStaleTemps(dir: string): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return removed;
    throw err;
  }
  for (const name of names) {
    const match = TEMP_PATTERN.exec(name);
    if (!match) continue;
    const path = join(resolve(dir), name);
    const pid = Number(match[1]);
    const stale = pid === process.pid ? !ownTemps.has(path) : !processAlive(pid);
    if (!stale) continue;
    await rm(path, { recursive: true, force: true });
    removed.push(path);
  }
  return removed;
}

/**
 * Finish or roll back a directory swap that a crash interrupted: if the target is missing, its
 * backup is the last complete version and goes back; if both exist, the swap completed and only
 * the backup's removal was lost.
 */
async function recoverInterruptedSwap(dir: string): Promise<void> {
  const backup = backupPathFor(dir);
  if (!(await exists(backup))) return;
  if (await exists(dir)) await rm(backup, { recursive: true, force: true });
  else await rename(backup, dir);
}

/**
 * Replace the directory `dir` as a whole: `fill` writes the new contents into a fresh temporary
 * directory beside it, everything is fsynced, then the old directory is swapped out by rename.
 * At every instant either the old or the new directory is complete on disk: after a crash,
 * the next call (or `loadCheckpoint`) finds the old one intact.
 */
export async function replaceDirAtomic(dir: string, fill: (tmpDir: string) => Promise<void>): Promise<void> {
  const target = resolve(dir);
  const parent = dirname(target);
  await mkdir(parent, { recursive: true });
  await recoverInterruptedSwap(target);
  await cleanStaleTemps(parent);
  const existing = await lstat(target).catch((err: unknown) => {
    if (errorCode(err) === 'ENOENT') return null;
    throw err;
  });
  if (existing && !existing.isDirectory()) throw new Error(`${target}: exists and is not a directory`);

  const tmp = tempPathFor(target);
  ownTemps.add(tmp);
  try {
    await mkdir(tmp);
    await fill(tmp);
    await fsyncTree(tmp);
    const backup = backupPathFor(target);
    if (existing) await rename(target, backup);
    await rename(tmp, target);
    await fsyncDir(parent);
    if (existing) await rm(backup, { recursive: true, force: true });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    await recoverInterruptedSwap(target);
    throw err;
  } finally {
    ownTemps.delete(tmp);
  }
}
