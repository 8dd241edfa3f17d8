// A source from its command-line form: maildir:<dir>, mbox:<file>, eml:<dir or file>,
// imap://user@host[:port]/Folder[,Folder…] or imaps://….
import { EmlSource } from './eml.js';
import { ImapSource, type ImapOptions } from './imap.js';
import { MaildirSource } from './maildir.js';
import { MboxSource } from './mbox.js';
import { SourceError, type MailSource } from './source.js';

export { EmlSource, ImapSource, MaildirSource, MboxSource, SourceError };
export type { MailSource, MessageRef, RawMessage } from './source.js';
export { parseImapUri, type ImapAddress, type ImapOptions } from './imap.js';
export { splitMbox, unescapeMboxMessage } from './mbox.js';

export function openSource(spec: string, imap: ImapOptions = {}): MailSource {
  if (/^imaps?:\/\//i.test(spec)) return new ImapSource(spec, imap);
  const m = /^(maildir|mbox|eml):(.+)$/.exec(spec);
  if (m === null) throw new SourceError(`--source ${JSON.stringify(spec)}: expected maildir:<dir>, mbox:<file>, eml:<dir or file>, or imap://user@host/Folder`);
  const [, kind, path] = m;
  return kind === 'maildir' ? new MaildirSource(path) : kind === 'mbox' ? new MboxSource(path) : new EmlSource(path);
}
