// `nanoseek serve`: the OpenAI-compatible server and chat page; `nanoseek bench serve`: its load test.
// SIGTERM or Ctrl-C stops accepting connections, lets running generations finish (up to --grace
// seconds, then cancels them) and exits 0; a second signal cancels at once.
import type { Command } from 'commander';
import { formatServeBench, runServeBench } from '../../../bench/serve.js';
import { PRESET_NAMES, type PresetName } from '../../model/config.js';
import { startExperts, withExpertFlags, type ExpertFlags } from '../expert-flags.js';
import { InferenceServer } from '../../serve/server.js';
import { benchCommand } from './bench.js';
import { intFlag, loadFromFlags, numberFlag, withModelFlags } from './generate.js';

interface ServeFlags extends ExpertFlags {
  model?: string;
  tokenizer?: string;
  host: string;
  port: number;
  apiKey?: string;
  modelId?: string;
  maxConcurrent: number;
  maxQueue: number;
  maxTokens?: number;
  prefillChunk: number;
  prefixCacheMb: number;
  grace: number;
  quiet?: boolean;
  mailState?: string;
  mailConfig?: string;
}

interface BenchFlags {
  model?: string;
  preset?: string;
  clients: number;
  seconds: number;
  maxTokens: number;
  json?: boolean;
}

/** A failed listen() as one line that says what to do. */
export function listenProblem(err: NodeJS.ErrnoException, host: string, port: number): string {
  if (err.code === 'EADDRINUSE') return `port ${port} on ${host} is already in use (another nanoseek serve?): stop that server, or pass --port <another port> (--port 0 picks a free one)`;
  if (err.code === 'EACCES') return `port ${port} on ${host} needs privileges this user lacks: pass --port 1024 or higher (--port 0 picks a free one)`;
  if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') return `--host ${host}: not an address of this machine (use 127.0.0.1, or 0.0.0.0 for every interface)`;
  return `cannot listen on ${host}:${port}: ${err.message}`;
}

export function register(program: Command): void {
  withExpertFlags(withModelFlags(program.command('serve').description('serve a checkpoint over an OpenAI-compatible HTTP API, with a chat page at /')))
    .option('--host <host>', 'interface to bind (anything but loopback requires an API key)', '127.0.0.1')
    .option('--port <n>', 'TCP port (0: any free port)', intFlag('--port', 0, 65535), 8080)
    .option('--api-key <key>', 'require "Authorization: Bearer <key>" on /v1 (default: $NANOSEEK_API_KEY)')
    .option('--model-id <name>', 'the model name clients use (default: the checkpoint directory name)')
    .option('--max-concurrent <n>', 'sequences decoded together', intFlag('--max-concurrent'), 32)
    .option('--max-queue <n>', 'requests waiting beyond those before answering 429', intFlag('--max-queue', 0), 64)
    .option('--max-tokens <n>', 'largest max_tokens a request may ask for (default: the context window)', intFlag('--max-tokens'))
    .option('--prefill-chunk <n>', 'prompt tokens per sequence per step', intFlag('--prefill-chunk'), 64)
    .option('--prefix-cache-mb <n>', 'memory for the KV rows of recent prompts, reused by prompts that start the same way (0: off)', numberFlag('--prefix-cache-mb', 0, 1e6), 256)
    .option('--grace <seconds>', 'on shutdown, how long running requests may take to finish', numberFlag('--grace', 0, 3600), 10)
    .option('--quiet', 'no request log on stderr')
    .option('--mail-state <db>', 'also serve the /mail page over this nanoseek mail state database (loopback only)')
    .option('--mail-config <json>', 'the mail config whose categories the /mail page offers')
    .action(async (o: ServeFlags) => {
      const apiKey = o.apiKey ?? (process.env.NANOSEEK_API_KEY || undefined);
      let routes;
      if (o.mailState !== undefined) {
        if (!['127.0.0.1', 'localhost', '::1'].includes(o.host)) throw new Error('--mail-state: the /mail page shows your mail; serve it on 127.0.0.1 only');
        // The mail app loads only for the /mail page.
        const { loadMailConfig, MailState, mailRoutes } = await import('../../mail/index.js');
        routes = [mailRoutes(new MailState(o.mailState), (await loadMailConfig(o.mailConfig)).categories)];
      }
      const ckpt = await loadFromFlags(o);
      const experts = await startExperts(ckpt.model, o, ckpt.dir, 'serve', 30);
      const log = o.quiet ? undefined : (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
      const server = new InferenceServer({
        model: ckpt.model,
        tokenizer: ckpt.tokenizer,
        modelId: o.modelId ?? ckpt.name,
        apiKey,
        maxTokens: o.maxTokens,
        engine: { maxConcurrent: o.maxConcurrent, maxQueue: o.maxQueue, prefillChunk: o.prefillChunk, prefixCache: { maxBytes: Math.round(o.prefixCacheMb * 2 ** 20) } },
        samplingDefaults: ckpt.samplingDefaults,
        checkpointDir: ckpt.dir,
        card: ckpt.card,
        log,
        routes,
      });
      const addr = await server.listen(o.port, o.host).catch((err: NodeJS.ErrnoException) => {
        throw new Error(listenProblem(err, o.host, o.port));
      });
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      process.stdout.write(`serving ${server.modelId} on http://${host}:${addr.port} (chat page at /, OpenAI API at /v1${routes ? ', mail at /mail' : ''}${apiKey ? ', API key required' : ''})\n`);

      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: NodeJS.Signals): void => {
          if (stopping) {
            process.stderr.write(`${signal} again: cancelling running requests\n`);
            server.engine.cancelAll();
            return;
          }
          stopping = true;
          const { running, queued } = server.engine.stats();
          process.stderr.write(`${signal}: no new requests; finishing ${running + queued} in flight (cancelled after ${o.grace} s)\n`);
          server.close({ graceMs: o.grace * 1000 }).then(resolve, resolve);
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
      });
      await experts.stop();
      const summary = experts.summary();
      if (summary !== null) process.stderr.write(`${summary}\n`);
      if (o.recordExperts !== undefined) process.stderr.write(`expert load written to ${o.recordExperts}\n`);
      process.stderr.write('server stopped\n');
      process.exit(0);
    });

  benchCommand(program)
    .command('serve')
    .description('load-test the server: N concurrent streaming clients vs one, tokens/s, latency percentiles, memory')
    .option('--model <dir>', 'checkpoint to serve (default: a random-weight --preset model)')
    .option('--preset <name>', `random-weight model to serve when no --model: ${PRESET_NAMES.join(', ')}`, 'micro')
    .option('--clients <n>', 'concurrent streaming clients', intFlag('--clients'), 32)
    .option('--seconds <s>', 'length of each phase (single client, then N clients)', numberFlag('--seconds', 1, 3600), 20)
    .option('--max-tokens <n>', 'tokens per request (EOS ignored, so each request decodes exactly this many)', intFlag('--max-tokens'), 128)
    .option('--json', 'one JSON document')
    .action(async (o: BenchFlags) => {
      if (o.model === undefined && !(PRESET_NAMES as readonly string[]).includes(o.preset ?? '')) {
        throw new Error(`--preset must be one of ${PRESET_NAMES.join(', ')}, got '${o.preset}'`);
      }
      const result = await runServeBench({
        model: o.model,
        preset: o.preset as PresetName,
        clients: o.clients,
        seconds: o.seconds,
        maxTokens: o.maxTokens,
        progress: o.json ? undefined : (line) => process.stderr.write(`${line}\n`),
      });
      process.stdout.write(o.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatServeBench(result)}\n`);
    });
}
