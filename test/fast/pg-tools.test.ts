/**
 * streamThrough and runTool with plain programs standing in for pg_restore and psql: the bytes
 * arrive exactly, between `before` and `after`; a source that fails has its sink killed before
 * the sink's input ends (so a psql never reaches its COMMIT); a sink that fails stops the source;
 * messages name the program that failed first, redacted.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runTool, streamThrough, ToolError, type ToolCommand } from '../../src/db/pg-tools.js';

const dir = mkdtempSync(join(tmpdir(), 'pg-tools-'));
/** 3 MB of random bytes: many pipe reads, every byte value, no valid UTF-8 to lean on. */
const data = randomBytes(3 * 1024 * 1024);
const dataFile = join(dir, 'data');
writeFileSync(dataFile, data);

function sh(script: string): ToolCommand {
  return { path: '/bin/sh', args: ['-c', script], env: process.env };
}
function bash(script: string): ToolCommand {
  return { path: '/bin/bash', args: ['-c', script], env: process.env };
}

async function failureOf(promise: Promise<unknown>): Promise<ToolError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ToolError);
  return error as ToolError;
}

describe('streamThrough', () => {
  it('gives the sink `before`, the source output byte for byte, then `after`', async () => {
    const out = join(dir, 'through');
    const before = Buffer.from('BEGIN; -- é✓\n');
    const after = Buffer.from([0xf0, 0x9f, 0x99, 0x82, 0x0a]);
    await streamThrough(sh(`cat '${dataFile}'`), bash(`cat > '${out}'`), { before, after });
    expect(readFileSync(out).equals(Buffer.concat([before, data, after]))).toBe(true);
  });

  it('a source that fails: the sink is killed before its input ends, `after` is never written, the source is named', async () => {
    const out = join(dir, 'source-fails');
    const ended = join(dir, 'sink-saw-the-end');
    const failure = await failureOf(
      streamThrough(
        sh(`cat '${dataFile}'; echo 'pg_restore: error: could not read from input file' >&2; exit 3`),
        bash(`cat > '${out}'; touch '${ended}'`),
        { after: 'COMMIT;\n' },
      ),
    );
    expect(failure.failures.map((f) => [f.program, f.outcome])).toEqual([['sh', 'exit 3']]);
    expect(failure.summary).toBe('pg_restore: error: could not read from input file');
    expect(existsSync(ended)).toBe(false);
    expect(readFileSync(out).subarray(-8).toString('latin1')).not.toContain('COMMIT');
  });

  it('a sink that fails: the source is stopped, the sink is named with its error', async () => {
    const failure = await failureOf(
      streamThrough(
        sh(`while :; do cat '${dataFile}'; done`),
        bash(`head -c 1000 > /dev/null; echo 'psql:<stdin>:3: ERROR:  boom' >&2; exit 3`),
      ),
    );
    expect(failure.failures.map((f) => [f.program, f.outcome])).toEqual([['bash', 'exit 3']]);
    expect(failure.summary).toBe('psql:<stdin>:3: ERROR:  boom');
  });
});

describe('runTool', () => {
  it('returns stdout as bytes, whole', async () => {
    const { stdout } = await runTool(sh(`cat '${dataFile}'`));
    expect(stdout.equals(data)).toBe(true);
  });

  it('feeds its input, and fails with the end of stderr, passwords redacted', async () => {
    const { stdout } = await runTool(sh('cat'), 'é✓🙂');
    expect(stdout.toString('utf8')).toBe('é✓🙂');
    const failure = await failureOf(
      runTool(sh(`head -c 20000 /dev/zero | tr '\\0' x >&2; echo 'could not connect to postgresql://app:s3cret@db/x' >&2; exit 2`)),
    );
    expect(failure.message).toContain('sh failed (exit 2): ...');
    expect(failure.message).toContain('postgresql://app:***@db/x');
    expect(failure.message).not.toContain('s3cret');
    expect(failure.message.length).toBeLessThan(2200);
  });

  it('a program that cannot start', async () => {
    const failure = await failureOf(runTool({ path: join(dir, 'no-such-tool'), args: [], env: process.env }));
    expect(failure.failures[0]?.outcome).toMatch(/^could not start: .*ENOENT/);
  });
});
