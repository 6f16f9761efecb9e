import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { bin } from './support/cli.js';
import { dropAfterAll, freshDatabase, query } from './support/db.js';
import { writePlan } from './support/plan-dir.js';

/** Runs the CLI with a stdout whose reader is gone before it prints: `tenantify status | head -0`, deterministically. */
function runWithClosedStdout(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, NO_COLOR: '1', DATABASE_URL: '', PGHOST: '', PGDATABASE: '', PGUSER: '', PGPORT: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

const units: Record<string, string> = {};
for (let i = 1; i <= 30; i++) {
  const id = `${String(i).padStart(4, '0')}_table_${i}`;
  units[`migrations/${id}.sql`] = `CREATE TABLE t${i} (id int);\n-- tenantify:verify t${i} is empty\nSELECT id FROM t${i};\n`;
  units[`rollbacks/${id}.sql`] = `DROP TABLE t${i};\n`;
}

describe('a closed stdout', () => {
  const dropLater = dropAfterAll();

  it('ends plan, status and verify quietly with exit 0, and apply runs to its end without it', async () => {
    const dir = writePlan(units);
    const offline = await runWithClosedStdout(['plan', '--dir', dir]);
    expect(offline.stderr).not.toMatch(/EPIPE|bug|\n\s+at /);
    expect(offline.code).toBe(0);

    const db = dropLater(await freshDatabase('epipe'));
    const applied = await runWithClosedStdout(['apply', '--dir', dir, '-d', db.url, '--no-snapshot']);
    expect(applied.stderr).not.toMatch(/EPIPE|bug/);
    expect(applied.code).toBe(0);
    for (const command of ['plan', 'status', 'verify']) {
      const result = await runWithClosedStdout([command, '--dir', dir, '-d', db.url]);
      expect(result.stderr, command).not.toMatch(/EPIPE|bug|\n\s+at /);
      expect(result.code, command).toBe(0);
    }
    // apply went on to the end: every unit is there.
    const [row] = await query<{ n: number }>(db.url, "SELECT count(*)::int AS n FROM pg_tables WHERE tablename ~ '^t[0-9]+$'");
    expect(row?.n).toBe(30);
  });
});
