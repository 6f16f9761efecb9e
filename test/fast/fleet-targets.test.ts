import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { targetsFromFile } from '../../src/app/fleet.js';
import { redact } from '../../src/db/redact.js';
import { parseTargets, targetsFromRows } from '../../src/fleet/targets.js';
import { isTenantifyError } from '../../src/errors.js';

/** The error a parse throws: its code, exit code and message (which must name file:line). */
function refusal(text: string): { code: string; exitCode: number; message: string } {
  try {
    parseTargets(text, 'targets.txt');
  } catch (error) {
    if (!isTenantifyError(error)) throw error;
    return { code: error.code, exitCode: error.exitCode, message: error.message };
  }
  throw new Error('parseTargets accepted it');
}

describe('parseTargets', () => {
  it('reads `name URL` lines, bare URLs named by their database, comments and blank lines', () => {
    const text = [
      '# the EU fleet',
      'acme   postgres://app:s3cret@db1.example:5433/acme_prod',
      '',
      'postgresql://app@db2.example/globex   # named by its database',
      '\tinitech\tpostgres://db3.example/x?sslmode=require',
    ].join('\r\n');
    expect(parseTargets(text, 'targets.txt')).toEqual([
      { name: 'acme', url: 'postgres://app:s3cret@db1.example:5433/acme_prod', source: 'targets.txt:2' },
      { name: 'globex', url: 'postgresql://app@db2.example/globex', source: 'targets.txt:4' },
      { name: 'initech', url: 'postgres://db3.example/x?sslmode=require', source: 'targets.txt:5' },
    ]);
  });

  it('refuses a bad line with exit 2, naming the file and the line', () => {
    const cases: [string, string, RegExp][] = [
      ['a postgres://h/a\nb postgres://h/b extra', 'targets.txt:2', /3 words/],
      ['ok postgres://h/ok\n\nmysql://h/db', 'targets.txt:3', /scheme/],
      ['postgres://h:99999/db', 'targets.txt:1', /port/],
      ['postgres://h/a postgres://h/b', 'targets.txt:1', /two URLs/],
      ['postgres://h', 'targets.txt:1', /names no database/],
      ['a postgres://h/a\na postgres://h/b', 'targets.txt:2', /"a" is taken by targets\.txt:1/],
      ['postgres://h/a\nx/y postgres://h/b', 'targets.txt:2', /not letters/],
    ];
    for (const [text, where, what] of cases) {
      const error = refusal(text);
      expect(error, text).toMatchObject({ code: 'targets-invalid', exitCode: 2 });
      expect(error.message.startsWith(`${where}: `), error.message).toBe(true);
      expect(error.message).toMatch(what);
    }
  });

  it('never puts a password in the message of a bad line', () => {
    const error = refusal('acme postgres://app:hunter2@db1.example:0/acme');
    expect(error.code).toBe('targets-invalid');
    expect(error.message).not.toContain('hunter2');
  });

  it('refuses a file with no target', () => {
    expect(refusal('# nothing yet\n\n')).toMatchObject({ code: 'targets-empty', exitCode: 2 });
  });
});

describe('targetsFromRows', () => {
  it('takes name and url columns; a null name is the database name', () => {
    expect(
      targetsFromRows([
        { name: 'a', url: 'postgres://h/x' },
        { name: null, url: 'postgres://h/b' },
      ]),
    ).toEqual([
      { name: 'a', url: 'postgres://h/x', source: '--targets-query row 1' },
      { name: 'b', url: 'postgres://h/b', source: '--targets-query row 2' },
    ]);
  });

  it('refuses rows without a url column, and names the bad row', () => {
    expect(() => targetsFromRows([{ name: 'a', dsn: 'postgres://h/a' }])).toThrow(expect.objectContaining({ code: 'targets-invalid' }));
    expect(() =>
      targetsFromRows([
        { name: 'a', url: 'postgres://h/a' },
        { name: 'b', url: 'nope' },
      ]),
    ).toThrow(/--targets-query row 2: /);
  });
});

describe('targetsFromFile', () => {
  it("remembers the targets' passwords: masked by value in any text printed later, as -d's are", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tenantify-targets-'));
    try {
      const file = join(dir, 'targets.txt');
      writeFileSync(file, 'acme postgres://app:Fl33tSecret@db1.example/acme\nbeta postgres://app:An%40ther@db2.example/beta\n');
      expect((await targetsFromFile(file)).map((t) => t.name)).toEqual(['acme', 'beta']);
      expect(redact('a unit threw Fl33tSecret; the server said An@ther')).toBe('a unit threw ***; the server said ***');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
