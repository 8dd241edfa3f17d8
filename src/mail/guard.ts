// The network tripwire of a triage run. Node publishes every client socket it creates on the
// diagnostics channel 'net.client.socket' (fetch's sockets included: undici opens them through net);
// the guard checks the host name before any DNS lookup and each address before each connection
// attempt, and destroys a socket bound anywhere but loopback or the configured IMAP host, then aborts
// the run. It sees sockets made by JavaScript on this thread only — not those of worker threads,
// native addons or child processes — so it is a tripwire, not a proof: the proof is the test that
// runs the whole pipeline in an empty network namespace (test/mail-offline.test.ts).
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { lookup } from 'node:dns/promises';
import { isIP, type Socket } from 'node:net';

import { isLoopbackHost } from '../util/net.js';

export { isLoopbackHost };

/** A connection the run was not allowed to make. */
export class PrivacyError extends Error {
  override name = 'PrivacyError';
}

export class NetworkGuard {
  private readonly hosts = new Set<string>();
  private readonly addresses = new Set<string>();
  private readonly listener = (message: unknown): void => this.onSocket((message as { socket: Socket }).socket);
  private active = false;
  /** The first violation, if any. */
  violation: PrivacyError | null = null;

  /** `allowed`: host names or addresses besides loopback (the IMAP host). */
  constructor(
    allowed: readonly string[] = [],
    private readonly onViolation: (err: PrivacyError) => void = () => {},
  ) {
    for (const h of allowed) (isIP(h) ? this.addresses : this.hosts).add(h.toLowerCase());
  }

  /** Resolves the allowed host names once, so that their addresses pass, then starts watching. */
  async start(): Promise<this> {
    for (const h of this.hosts) {
      for (const a of await lookup(h, { all: true }).catch(() => [])) this.addresses.add(a.address);
    }
    subscribe('net.client.socket', this.listener);
    this.active = true;
    return this;
  }

  stop(): void {
    if (this.active) unsubscribe('net.client.socket', this.listener);
    this.active = false;
  }

  private allowedAddress(a: string): boolean {
    return isLoopbackHost(a) || this.addresses.has(a.toLowerCase());
  }

  private refuse(socket: Socket, where: string): void {
    const err = new PrivacyError(`blocked a connection to ${where}: a triage run talks only to loopback and the configured IMAP host`);
    socket.destroy(err);
    if (this.violation === null) {
      this.violation = err;
      this.onViolation(err);
    }
  }

  private onSocket(socket: Socket): void {
    // connect() runs right after the socket is published: by the next tick a host name is known and
    // its lookup has not finished (Node drops a lookup whose socket was destroyed meanwhile).
    process.nextTick(() => {
      const host = (socket as Socket & { _host?: string | null })._host;
      if (typeof host === 'string' && host !== '' && !isIP(host) && !isLoopbackHost(host) && !this.hosts.has(host.toLowerCase())) this.refuse(socket, host);
    });
    socket.on('connectionAttempt', (ip: string, port: number) => {
      // Node calls connect right after this event and would trip over a socket destroyed inside it;
      // destroyed on the next turn, the attempt ends before any byte of ours is written.
      if (!this.allowedAddress(ip)) setImmediate(() => this.refuse(socket, `${ip}:${port}`));
    });
  }
}
