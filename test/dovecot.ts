// A real IMAP server for the mail tests: Debian's dovecot-imapd (scripts/install-system-deps.sh
// installs it), started on 127.0.0.1 with a configuration this file writes into a temporary folder.
// Dovecot's login process refuses root and mail users must not be uid 0, so the mail user is uid
// 65534 (nobody) and the package's dovecot/dovenull users run the internals.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const DOVECOT = '/usr/sbin/dovecot';

export function dovecotMissing(): string | null {
  if (spawnSync(DOVECOT, ['--version']).status !== 0) return `${DOVECOT} is not installed: run scripts/install-system-deps.sh (it installs dovecot-imapd)`;
  if (process.getuid?.() !== 0) return 'the dovecot tests start the server as root (it drops to its own users)';
  return null;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Dovecot {
  port: number;
  user: string;
  password: string;
  root: string;
  /** The user's Maildir on disk. */
  maildir: string;
  stop(): Promise<void>;
  /** Every file under the user's Maildir (relative path → bytes), for byte-identity checks. */
  snapshot(): Map<string, string>;
}

function conf(R: string, port: number): string {
  return `instance_name = nanoseek-test-${port}
base_dir = ${R}/run
state_dir = ${R}/state
log_path = ${R}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
first_valid_uid = 100
mail_location = maildir:${R}/mail/%u
mail_fsync = never
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${R}/users
}
userdb {
  driver = passwd-file
  args = username_format=%u ${R}/users
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
service stats {
  chroot =
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Junk {
    special_use = \\Junk
    auto = create
  }
  mailbox Archive {
    special_use = \\Archive
    auto = create
  }
}
`;
}

/** Starts dovecot; `root` reuses a folder (a restart keeps the mailbox). */
export async function startDovecot(options: { root?: string; port?: number } = {}): Promise<Dovecot> {
  const R = options.root ?? mkdtempSync(join(tmpdir(), 'nanoseek-dovecot-'));
  chmodSync(R, 0o755);
  for (const d of ['run', 'state', 'mail', 'home']) mkdirSync(join(R, d), { recursive: true });
  chownSync(join(R, 'mail'), 65534, 65534);
  chownSync(join(R, 'home'), 65534, 65534);
  const password = 'secret';
  writeFileSync(join(R, 'users'), `alice:{PLAIN}${password}:65534:65534::${R}/home/alice\n`);
  const port = options.port ?? (await freePort());
  writeFileSync(join(R, 'dovecot.conf'), conf(R, port));
  const proc: ChildProcess = spawn(DOVECOT, ['-F', '-c', join(R, 'dovecot.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout!.on('data', (d) => (output += d));
  proc.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  // Listening within about a second.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('data', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    if (proc.exitCode !== null || Date.now() > deadline) {
      let log = '';
      try {
        log = readFileSync(join(R, 'dovecot.log'), 'utf8');
      } catch {}
      proc.kill('SIGKILL');
      throw new Error(`dovecot did not start on 127.0.0.1:${port}: ${output}${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const maildir = join(R, 'mail', 'alice');
  return {
    port,
    user: 'alice',
    password,
    root: R,
    maildir,
    async stop() {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await exited;
      }
    },
    snapshot() {
      const out = new Map<string, string>();
      const walk = (dir: string, rel: string): void => {
        for (const e of readdirSync(dir, { withFileTypes: true })) {
          const p = join(dir, e.name);
          const r = rel === '' ? e.name : `${rel}/${e.name}`;
          if (e.isDirectory()) walk(p, r);
          else if (/\/(cur|new)\//.test(`/${r}`) || r.startsWith('cur/') || r.startsWith('new/')) out.set(r, readFileSync(p).toString('base64'));
        }
      };
      walk(maildir, '');
      return out;
    },
  };
}

export function removeDovecotRoot(root: string): void {
  rmSync(root, { recursive: true, force: true });
}
