/** The bench plans: N small schema units, one directory per tool in its own format. Bench-only. */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const pad = (n: number): string => String(n).padStart(4, '0');
const tableName = (i: number): string => `bench_t${pad(i)}`;

/** The three statements every tool runs for unit i. */
export function unitBody(i: number): string {
  const t = tableName(i);
  return [
    `CREATE TABLE ${t} (\n  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n  tenant_id bigint NOT NULL,\n  name text NOT NULL,\n  created_at timestamptz NOT NULL DEFAULT now()\n);`,
    `CREATE INDEX ${t}_tenant_idx ON ${t} (tenant_id, created_at);`,
    `COMMENT ON TABLE ${t} IS 'bench unit ${i}';`,
  ].join('\n');
}

/** tenantify only: a real verify (the new table is empty: any row is a violation). */
export function unitVerify(i: number): string {
  return `-- tenantify:verify the new table starts empty\nSELECT id FROM ${tableName(i)};`;
}

export interface Plans {
  root: string;
  tenantify: string;
  dbmate: string;
  pgm: string;
  psqlFile: string;
}

/** One directory per tool, each in its own file format around the same statements. */
export function generatePlans(units: number): Plans {
  const root = mkdtempSync(join(tmpdir(), 'tenantify-bench-'));
  const plans: Plans = {
    root,
    tenantify: join(root, 'tenantify'),
    dbmate: join(root, 'dbmate', 'migrations'),
    pgm: join(root, 'node-pg-migrate', 'migrations'),
    psqlFile: join(root, 'psql', 'all.sql'),
  };
  mkdirSync(join(plans.tenantify, 'migrations'), { recursive: true });
  mkdirSync(plans.dbmate, { recursive: true });
  mkdirSync(plans.pgm, { recursive: true });
  mkdirSync(join(root, 'psql'), { recursive: true });
  const all: string[] = [];
  for (let i = 1; i <= units; i++) {
    const body = unitBody(i);
    const name = `bench_t${pad(i)}`;
    writeFileSync(join(plans.tenantify, 'migrations', `${pad(i)}_${name}.sql`), `${body}\n\n${unitVerify(i)}\n`);
    writeFileSync(
      join(plans.dbmate, `${20240101000000 + i}_${name}.sql`),
      `-- migrate:up\n${body}\n\n-- migrate:down\nDROP TABLE ${tableName(i)};\n`,
    );
    writeFileSync(
      join(plans.pgm, `${1700000000000 + i}_${name}.sql`),
      `-- Up Migration\n${body}\n\n-- Down Migration\nDROP TABLE ${tableName(i)};\n`,
    );
    all.push(`-- unit ${i}\n${body}\n`);
  }
  writeFileSync(plans.psqlFile, all.join('\n'));
  return plans;
}
