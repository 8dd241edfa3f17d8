// One line per subcommand module; each exports `register(program)`.
import type { Command } from 'commander';
import { register as bench } from './bench.js';
import { register as chat } from './chat.js';
import { register as convert } from './convert.js';
import { register as distill } from './distill.js';
import { register as evaluate } from './eval.js';
import { register as experts } from './experts.js';
import { register as generate } from './generate.js';
import { register as grpo } from './grpo.js';
import { register as mail } from './mail.js';
import { register as model } from './model.js';
import { register as perplexity } from './perplexity.js';
import { register as plot } from './plot.js';
import { register as r1zero } from './r1zero.js';
import { register as serve } from './serve.js';
import { register as tasks } from './tasks.js';
import { register as tokenize } from './tokenize.js';
import { register as train } from './train.js';

export type Register = (program: Command) => void;

export const commands: Register[] = [bench, chat, convert, distill, evaluate, experts, generate, grpo, mail, model, perplexity, plot, r1zero, serve, tasks, tokenize, train];
