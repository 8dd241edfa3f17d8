// Where mail comes from. A source lists the messages of its folders cheaply (keys only), hands over
// raw bytes on demand, and — only with --apply — moves messages and sets flags. Keys are stable
// across runs (IMAP: UIDVALIDITY + UID; Maildir: the unique part of the file name; mbox: offset and
// content hash; .eml: the relative path), so the state database can tell new mail from seen mail.

export interface MessageRef {
  folder: string;
  key: string;
  /** Where a person finds the original: an imap:// UID URL or a file path. */
  location: string;
}

export interface RawMessage extends MessageRef {
  bytes: Uint8Array;
}

export interface MailSource {
  /** The source as given, without secrets: the state database keys results by it. */
  readonly uri: string;
  readonly kind: 'imap' | 'maildir' | 'mbox' | 'eml';
  open(): Promise<void>;
  /** Folders to read (IMAP: the ones asked for, default INBOX; Maildir: the root and its subfolders). */
  folders(): Promise<string[]>;
  list(folder: string): Promise<MessageRef[]>;
  /** The raw bytes of one message. */
  read(ref: MessageRef): Promise<Uint8Array>;
  /** Moves a message into another folder (created when missing). Never deletes. */
  move?(ref: MessageRef, target: string): Promise<void>;
  /** Adds flags or keywords to a message. */
  flag?(ref: MessageRef, flags: string[]): Promise<void>;
  close(): Promise<void>;
}

/** Bad source syntax or a source that cannot be read; the message names the source. */
export class SourceError extends Error {}
