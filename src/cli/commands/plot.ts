// `nanoseek plot <run-dir>`: the run's metrics as a self-contained HTML page of SVG charts.
import type { Command } from 'commander';
import { plotRun } from '../../train/plot.js';

export function register(program: Command): void {
  program
    .command('plot')
    .description('render a run\'s metrics.jsonl (loss, learning rate, validation loss, expert load) to one HTML file')
    .argument('<run-dir>', 'a training run directory (holds metrics.jsonl)')
    .option('--out <file>', 'HTML file to write (default <run-dir>/metrics.html)')
    .action(async (runDir: string, o: { out?: string }) => {
      const path = await plotRun(runDir, o.out);
      process.stdout.write(`wrote ${path}\n`);
    });
}
