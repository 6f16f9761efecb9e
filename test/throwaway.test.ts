import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { postmasterRunning } from './support/db.js';
import {
  choosePath,
  dockerEngineAnswers,
  findPostgresBinaries,
  startThrowawayPostgres,
  withThrowawayPostgres,
} from '../src/db/throwaway.js';

const binaries = findPostgresBinaries();
const dockerAnswers = await dockerEngineAnswers();

async function selectOne(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ n: number }>('SELECT 41 + 1 AS n')).rows[0]?.n ?? 0;
  } finally {
    await client.end();
  }
}

describe.skipIf(!binaries)('throwaway PostgreSQL from the local binaries', () => {
  it('starts, answers a query, and leaves nothing behind when closed', async () => {
    const server = await startThrowawayPostgres({ prefer: 'local' });
    const directory = server.directory as string;
    expect(server.kind).toBe('local');
    expect(existsSync(directory)).toBe(true);
    expect(postmasterRunning(directory)).toBe(true);
    expect(await selectOne(server.url)).toBe(42);
    await server.close();
    expect(existsSync(directory)).toBe(false);
    expect(postmasterRunning(directory)).toBe(false);
    await expect(selectOne(server.url)).rejects.toThrow();
  });

  it('removes everything also when the callback fails', async () => {
    let directory = '';
    await expect(
      withThrowawayPostgres({ prefer: 'local' }, async (server) => {
        directory = server.directory as string;
        expect(await selectOne(server.url)).toBe(42);
        throw new Error('the test failed here');
      }),
    ).rejects.toThrow('the test failed here');
    expect(directory).not.toBe('');
    expect(existsSync(directory)).toBe(false);
    expect(postmasterRunning(directory)).toBe(false);
  });

  it('is removed when its process is interrupted with SIGINT', async () => {
    const script = `
      import { startThrowawayPostgres } from ${JSON.stringify(new URL('../src/db/throwaway.ts', import.meta.url).pathname)};
      const s = await startThrowawayPostgres({ prefer: 'local' });
      console.log(s.directory);
      setInterval(() => {}, 1000);`;
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const directory = await new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())));
    expect(existsSync(directory)).toBe(true);
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    child.kill('SIGINT');
    expect(await exited).toBe('SIGINT');
    expect(existsSync(directory)).toBe(false);
    expect(postmasterRunning(directory)).toBe(false);
  });
});

describe('removal on a signal', () => {
  it('waits for an asynchronous removal (containers) before dying of SIGINT', async () => {
    const marker = join(mkdtempSync(join(tmpdir(), 'tenantify-signal-')), 'removed');
    const script = `
      import { writeFileSync } from 'node:fs';
      import { removeOnSignal } from ${JSON.stringify(new URL('../src/db/throwaway-nodes.ts', import.meta.url).pathname)};
      removeOnSignal(async () => {
        await new Promise((resolve) => setTimeout(resolve, 300));
        writeFileSync(${JSON.stringify(marker)}, 'removed');
      });
      const forgotten = removeOnSignal(async () => writeFileSync(${JSON.stringify(`${marker}-forgotten`)}, 'removed'));
      forgotten();
      console.log('ready');
      setInterval(() => {}, 1000);`;
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    child.kill('SIGINT');
    expect(await exited).toBe('SIGINT');
    expect(readFileSync(marker, 'utf8')).toBe('removed');
    expect(existsSync(`${marker}-forgotten`)).toBe(false);
  });
});

describe('choosing the path', () => {
  const local = () => ({ bin: '/usr/lib/postgresql/15/bin', majorVersion: 15 });
  it('takes an explicit URL first', async () => {
    expect(
      (await choosePath({ explicitUrl: 'postgres://x@h/db', prefer: undefined, dockerAnswers: async () => true, localBinaries: local }))
        .kind,
    ).toBe('explicit');
  });
  it('takes Testcontainers when a Docker engine answers', async () => {
    expect(
      (await choosePath({ explicitUrl: undefined, prefer: undefined, dockerAnswers: async () => true, localBinaries: local })).kind,
    ).toBe('testcontainers');
  });
  it('falls back to the local binaries when no engine answers', async () => {
    expect(
      (await choosePath({ explicitUrl: undefined, prefer: undefined, dockerAnswers: async () => false, localBinaries: local })).kind,
    ).toBe('local');
  });
  it('says what to install when there is neither', async () => {
    await expect(
      choosePath({ explicitUrl: undefined, prefer: undefined, dockerAnswers: async () => false, localBinaries: () => undefined }),
    ).rejects.toThrow(/apt-get install -y postgresql/);
  });
});

if (!dockerAnswers) console.log('skipped: the Testcontainers path needs a Docker engine, and none answers on this machine');

describe.skipIf(!dockerAnswers)('throwaway PostgreSQL from Testcontainers', () => {
  it('is chosen when a Docker engine answers, and works', async () => {
    await withThrowawayPostgres({}, async (server) => {
      expect(server.kind).toBe('testcontainers');
      expect(await selectOne(server.url)).toBe(42);
    });
  });
});
