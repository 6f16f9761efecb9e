/**
 * Everything that prints goes through an Output. With --json, stdout carries exactly one
 * JSON document (result) and every human line goes to stderr.
 */
import { Chalk, type ChalkInstance } from 'chalk';
import { redact } from '../db/redact.js';

export interface OutputOptions {
  json?: boolean;
  color?: boolean;
}

export interface Spinner {
  update(text: string): void;
  succeed(text: string): void;
  fail(text: string): void;
  warn(text: string): void;
  stop(): void;
}

export interface Output {
  readonly json: boolean;
  readonly style: ChalkInstance;
  /** A line for the reader: stdout, or stderr under --json. */
  line(text?: string): void;
  /** Progress and logs: always stderr. */
  log(text: string): void;
  error(text: string): void;
  /** The one JSON document of a --json run. */
  result(document: unknown): void;
  /** A per-step spinner on a terminal; plain lines otherwise. */
  spinner(text: string): Promise<Spinner>;
  /**
   * cli-table3's layout: on a terminal, columns of these widths with words wrapped; piped
   * to another program, rows whole, so `tenantify verify | grep` finds every name.
   */
  tableLayout(widths: number[]): { wordWrap?: boolean; colWidths?: number[] };
}

export function colorEnabled(options: OutputOptions, stream: NodeJS.WriteStream = process.stdout): boolean {
  if (options.color === false) return false;
  if (process.env['NO_COLOR'] !== undefined && process.env['NO_COLOR'] !== '') return false;
  return Boolean(stream.isTTY);
}

let stdoutClosed = false;

/**
 * A reader that goes away (`tenantify status | head -1`) is no error. A read-only command
 * ends there, quietly, exit 0, as every Unix tool does; a command that changes the database
 * goes on to its end (stopping half-way would only leave more to resume) without stdout.
 * Call once per process, before anything prints.
 */
export function handleClosedStdout(readOnly: boolean): void {
  const closed = (error: NodeJS.ErrnoException): void => {
    if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') throw error;
    stdoutClosed = true;
    if (readOnly) process.exit(0);
  };
  process.stdout.on('error', closed);
  // stderr closed too (`2>&1 | head`): nothing more can be said, and that is no reason to stop a run.
  process.stderr.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') throw error;
  });
}

export function createOutput(options: OutputOptions): Output {
  const json = Boolean(options.json);
  const style = new Chalk({ level: colorEnabled(options, json ? process.stderr : process.stdout) ? 1 : 0 });
  const human = json ? process.stderr : process.stdout;
  const write = (stream: NodeJS.WriteStream, text: string): void => {
    if (stream === process.stdout && stdoutClosed) return;
    stream.write(`${redact(text)}\n`);
  };
  const output: Output = {
    json,
    style,
    line: (text = '') => write(human, text),
    log: (text) => write(process.stderr, text),
    error: (text) => write(process.stderr, text),
    result: (document) => {
      if (stdoutClosed) return;
      // Each string redacted on its own: masking the text as a whole could cut through its quoting.
      process.stdout.write(
        `${JSON.stringify(document, (_key, value: unknown) => (typeof value === 'string' ? redact(value) : value), 2)}\n`,
      );
    },
    tableLayout: (widths) => (human.isTTY ? { wordWrap: true, colWidths: widths } : {}),
    spinner: async (text) => {
      const interactive = Boolean(process.stderr.isTTY) && !process.env['CI'] && style.level > 0;
      if (!interactive) return plainSpinner(output, text);
      const { default: ora } = await import('ora');
      const spinner = ora({ text: redact(text), stream: process.stderr }).start();
      return {
        update: (t) => void (spinner.text = redact(t)),
        succeed: (t) => void spinner.succeed(redact(t)),
        fail: (t) => void spinner.fail(redact(t)),
        warn: (t) => void spinner.warn(redact(t)),
        stop: () => void spinner.stop(),
      };
    },
  };
  return output;
}

function plainSpinner(output: Output, _text: string): Spinner {
  const { style } = output;
  return {
    update: () => {},
    succeed: (t) => output.line(`${style.green('✔')} ${t}`),
    fail: (t) => output.line(`${style.red('✖')} ${t}`),
    warn: (t) => output.line(`${style.yellow('⚠')} ${t}`),
    stop: () => {},
  };
}
