// `nanoseek chat`: a conversation in the terminal. Reasoning streams dimmed, the answer plain; only
// answers go back into the history, as R1's chat template drops earlier reasoning anyway. Ctrl-C
// stops the reply being written; at the prompt it (or Ctrl-D, or /exit) quits.
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { Engine, promptOpensThink, ReasoningSplitter } from '../../infer/index.js';
import type { ModelCard } from '../../io/model-card.js';
import { applyChatTemplate, type ChatMessage } from '../../tokenizer/index.js';
import { loadFromFlags, ReplyPrinter, samplingFrom, withModelFlags, withSamplingFlags, type SamplingFlags } from './generate.js';

interface ChatFlags extends SamplingFlags {
  model?: string;
  tokenizer?: string;
  system?: string;
}

const HELP = 'commands: /reset (forget the conversation), /exit (quit), /help';

/** What the model card says the model knows, and questions to try, as banner lines. */
export function cardBanner(card: ModelCard | null): string[] {
  if (card === null) return [];
  const lines = card.description === null ? [] : [card.description];
  if (card.examples.length > 0) lines.push(`Try: ${card.examples.join('  or  ')}`);
  return lines;
}

export function register(program: Command): void {
  const cmd = program.command('chat').description('chat with a checkpoint in the terminal (/reset, /exit)');
  withSamplingFlags(withModelFlags(cmd), 512)
    .option('--system <text>', 'a system message at the start of every conversation')
    .action(async (o: ChatFlags) => {
      const ckpt = await loadFromFlags(o);
      const { model, tokenizer } = ckpt;
      const engine = new Engine(model, tokenizer, { maxConcurrent: 1 });
      const printer = new ReplyPrinter(process.stdout, process.stdout.isTTY === true);
      const context = model.config.max_position_embeddings;
      const fresh = (): ChatMessage[] => (o.system === undefined ? [] : [{ role: 'system', content: o.system }]);
      let history = fresh();
      let turn = 0;
      let reply: AbortController | null = null;

      printer.note(`${ckpt.name}: ${model.config.architectures[0]}, context ${context} tokens. ${HELP}`);
      for (const line of cardBanner(ckpt.card)) printer.note(line);
      const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: '> ' });
      rl.on('SIGINT', () => {
        if (reply !== null) reply.abort();
        else rl.close();
      });
      // SIGTERM (a kill from another terminal, a supervisor): stop the reply and leave as /exit does.
      process.on('SIGTERM', () => {
        reply?.abort();
        rl.close();
      });
      rl.prompt();
      for await (const line of rl) {
        const input = line.trim();
        if (input === '/exit' || input === '/quit') break;
        if (input === '/reset') {
          history = fresh();
          printer.note('(conversation reset)');
        } else if (input === '/help') {
          printer.note(HELP);
        } else if (input.startsWith('/')) {
          printer.note(`unknown command ${input}; ${HELP}`);
        } else if (input !== '') {
          history.push({ role: 'user', content: input });
          // Drop the oldest exchanges until the prompt leaves room for an answer.
          let text = applyChatTemplate(tokenizer, history);
          let ids = tokenizer.encode(text);
          while (ids.length > context - Math.min(o.maxTokens ?? 512, context / 2) && history.filter((m) => m.role !== 'system').length > 1) {
            const first = history.findIndex((m) => m.role !== 'system');
            history.splice(first, history[first + 1]?.role === 'assistant' ? 2 : 1);
            text = applyChatTemplate(tokenizer, history);
            ids = tokenizer.encode(text);
            printer.note('(the oldest turn no longer fits the context and was dropped)');
          }
          if (ids.length >= context) {
            history.pop();
            printer.note(`(that message is ${ids.length} tokens; the context holds ${context})`);
          } else {
            reply = new AbortController();
            const splitter = new ReasoningSplitter(promptOpensThink(text));
            const started = performance.now();
            const gen = engine.submit(ids, {
              ...samplingFrom(o, ckpt),
              seed: o.seed === undefined ? undefined : o.seed + turn,
              maxTokens: Math.min(o.maxTokens ?? 512, context - ids.length),
              signal: reply.signal,
            });
            let answer = '';
            for await (const e of gen) {
              const part = splitter.push(e.text);
              answer += part.content;
              printer.write(part);
            }
            const rest = splitter.flush();
            answer += rest.content;
            printer.write(rest);
            printer.end();
            const r = await gen.result;
            const seconds = (performance.now() - started) / 1000;
            printer.note(`[${r.tokens.length} tokens, ${(r.tokens.length / seconds).toFixed(1)} tokens/s${r.finishReason === 'stop' ? '' : `, ${r.finishReason === 'length' ? 'hit the token limit' : 'stopped'}`}]`);
            history.push({ role: 'assistant', content: answer });
            reply = null;
            turn++;
          }
        }
        rl.prompt();
      }
      rl.close();
      await engine.close({ cancel: true });
    });
}
