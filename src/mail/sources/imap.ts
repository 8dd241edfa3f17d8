// IMAP through imapflow. imap://user@host[:port]/Folder (STARTTLS whenever the server offers it, and
// required unless the host is loopback) or imaps://… (TLS from the start). The password comes from
// an environment variable or a file, never from the URI or a flag, and is never logged.
//
// Read-only runs open folders with EXAMINE and fetch with BODY.PEEK, so nothing on the server
// changes, not even the \Seen flag. Keys are "<UIDVALIDITY>:<UID>": when a server renumbers a folder
// (a new UIDVALIDITY) its messages are new to the state database, as they must be.
import { ImapFlow } from 'imapflow';
import { readFile } from 'node:fs/promises';
import { isLoopbackHost } from '../guard.js';
import { SourceError, type MailSource, type MessageRef } from './source.js';

export interface ImapOptions {
  /** Environment variable holding the password (default NANOSEEK_IMAP_PASSWORD). */
  passwordEnv?: string;
  /** A file whose first line is the password (wins over the environment). */
  passwordFile?: string;
  /** Opens folders read-write (for --apply). */
  writable?: boolean;
  /** Seconds before a silent server counts as gone (default 60). */
  timeoutS?: number;
}

export interface ImapAddress {
  secure: boolean;
  host: string;
  port: number;
  user: string;
  folders: string[];
}

/** imap://user@host:port/INBOX,Lists/Work → its parts; a password in the URI is refused. */
export function parseImapUri(uri: string): ImapAddress {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    throw new SourceError(`${uri}: not a URL (expected imap://user@host[:port]/Folder or imaps://…)`);
  }
  if (u.protocol !== 'imap:' && u.protocol !== 'imaps:') throw new SourceError(`${uri}: the scheme must be imap or imaps`);
  if (u.password !== '') throw new SourceError('the IMAP password must not be in the URI (it would show in process lists and logs): set NANOSEEK_IMAP_PASSWORD or pass --password-file');
  if (u.username === '') throw new SourceError(`${uri}: no user (imap://user@host/…)`);
  const secure = u.protocol === 'imaps:';
  const path = decodeURIComponent(u.pathname.replace(/^\//, ''));
  return {
    secure,
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port === '' ? (secure ? 993 : 143) : Number(u.port),
    user: decodeURIComponent(u.username),
    folders: path === '' ? ['INBOX'] : path.split(',').filter((f) => f !== ''),
  };
}

export class ImapSource implements MailSource {
  readonly kind = 'imap';
  readonly uri: string;
  readonly address: ImapAddress;
  private client: ImapFlow | null = null;
  private open_: string | null = null;
  private readonly validity = new Map<string, string>();

  constructor(
    uri: string,
    private readonly options: ImapOptions = {},
  ) {
    this.address = parseImapUri(uri);
    const a = this.address;
    this.uri = `${a.secure ? 'imaps' : 'imap'}://${encodeURIComponent(a.user)}@${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
  }

  private async password(): Promise<string> {
    if (this.options.passwordFile !== undefined) {
      const text = await readFile(this.options.passwordFile, 'utf8').catch((err: Error) => {
        throw new SourceError(`--password-file ${this.options.passwordFile}: ${err.message}`);
      });
      return text.split(/\r?\n/)[0];
    }
    const env = this.options.passwordEnv ?? 'NANOSEEK_IMAP_PASSWORD';
    const p = process.env[env];
    if (p === undefined || p === '') throw new SourceError(`no IMAP password: set ${env} or pass --password-file`);
    return p;
  }

  async open(): Promise<void> {
    const a = this.address;
    const loopback = isLoopbackHost(a.host);
    const client = new ImapFlow({
      host: a.host,
      port: a.port,
      secure: a.secure,
      // Beyond this machine the password never travels in clear text.
      doSTARTTLS: a.secure ? undefined : loopback ? undefined : true,
      auth: { user: a.user, pass: await this.password() },
      logger: false,
      disableAutoIdle: true,
      connectionTimeout: (this.options.timeoutS ?? 60) * 1000,
      socketTimeout: (this.options.timeoutS ?? 60) * 1000,
    });
    client.on('error', () => {}); // surfaced by the failing command instead
    try {
      await client.connect();
    } catch (err) {
      const e = err as Error & { authenticationFailed?: boolean; responseText?: string };
      if (e.authenticationFailed) throw new SourceError(`${this.uri}: login failed for ${a.user} (wrong user or password)`);
      throw new SourceError(`${this.uri}: cannot connect: ${e.message}`);
    }
    this.client = client;
  }

  private get c(): ImapFlow {
    if (this.client === null || !this.client.usable) throw new SourceError(`${this.uri}: the connection was lost; run again to resume`);
    return this.client;
  }

  private async select(folder: string): Promise<void> {
    if (this.open_ === folder && this.client?.mailbox) return;
    let box;
    try {
      box = await this.c.mailboxOpen(folder, { readOnly: !this.options.writable });
    } catch (err) {
      if (err instanceof SourceError) throw err;
      throw new SourceError(`${this.uri}: cannot open folder ${folder}: ${(err as Error & { responseText?: string }).responseText ?? (err as Error).message}`);
    }
    this.validity.set(folder, String(box.uidValidity)); // a BigInt: kept as text
    this.open_ = folder;
  }

  async folders(): Promise<string[]> {
    return this.address.folders;
  }

  async list(folder: string): Promise<MessageRef[]> {
    await this.select(folder);
    const uids = ((await this.c.search({ all: true }, { uid: true })) || []) as number[];
    const v = this.validity.get(folder)!;
    const a = this.address;
    return uids
      .sort((x, y) => x - y)
      .map((uid) => ({ folder, key: `${v}:${uid}`, location: `imap://${encodeURIComponent(a.user)}@${a.host}:${a.port}/${encodeURIComponent(folder)};UIDVALIDITY=${v}/;UID=${uid}` }));
  }

  private uidOf(ref: MessageRef): string {
    const [v, uid] = ref.key.split(':');
    if (this.validity.get(ref.folder) !== v) throw new SourceError(`${this.uri}: ${ref.folder} was renumbered (UIDVALIDITY ${v} → ${this.validity.get(ref.folder)}); list it again`);
    return uid;
  }

  async read(ref: MessageRef): Promise<Uint8Array> {
    await this.select(ref.folder);
    const uid = this.uidOf(ref);
    let msg;
    try {
      msg = await this.c.fetchOne(uid, { source: true }, { uid: true });
    } catch (err) {
      if (err instanceof SourceError) throw err;
      throw new SourceError(`${this.uri}: fetching UID ${uid} of ${ref.folder} failed: ${(err as Error).message}; run again to resume`);
    }
    if (msg === false || msg.source === undefined) throw new SourceError(`${this.uri}: UID ${uid} is gone from ${ref.folder}`);
    return msg.source;
  }

  private async ensureFolder(target: string): Promise<void> {
    const boxes = await this.c.list();
    if (!boxes.some((b) => b.path === target)) await this.c.mailboxCreate(target);
  }

  async move(ref: MessageRef, target: string): Promise<void> {
    await this.ensureFolder(target);
    await this.select(ref.folder);
    // MOVE where the server has it; imapflow falls back to COPY + \Deleted + EXPUNGE of this UID only.
    const r = await this.c.messageMove(this.uidOf(ref), target, { uid: true });
    if (r === false) throw new SourceError(`${this.uri}: moving UID ${this.uidOf(ref)} to ${target} failed`);
  }

  async flag(ref: MessageRef, flags: string[]): Promise<void> {
    await this.select(ref.folder);
    await this.c.messageFlagsAdd(this.uidOf(ref), flags, { uid: true });
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (c === null) return;
    await c.logout().catch(() => c.close());
  }
}
