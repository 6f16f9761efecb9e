/**
 * tenancyCheck(): proves isolation on an upgraded database from the model (docs/tenancy.md).
 * Read-only: the catalog and every data rule are read in one read-only REPEATABLE READ
 * snapshot (shared by a few connections) under a statement timeout; the probe (`--as`)
 * writes only inside transactions that are always rolled back.
 */
import { withFixtureDatabase } from '../db/fixture.js';
import { loadConfig } from '../plan/config.js';
import { readCatalog } from '../tenancy/catalog.js';
import { readAccess } from '../tenancy/check-access.js';
import { catalogFindings, dataQueries, fails, parsersNeeded, selectRules, sortFindings } from '../tenancy/check.js';
import { withCheckSnapshot } from '../tenancy/check-data.js';
import { probeIsolation } from '../tenancy/check-probe.js';
import { buildScope } from '../tenancy/check-scope.js';
import { loadBodyParsers } from '../tenancy/function-body.js';
import { analyzeTenancy } from '../tenancy/graph.js';
import { keepSchema } from '../tenancy/scaffold/plan.js';
import { stagingSchemaPrefix } from './tenancy-consolidate.js';
import { tenancyConfigFrom, type TenancyOverrides } from '../tenancy/model.js';
import { loadExpressionParser } from '../tenancy/policy-expr.js';
import type { Finding, Parser } from '../tenancy/rules/types.js';
import type { TenancyConfig } from '../tenancy/types.js';

export interface TenancyCheckOptions extends TenancyOverrides {
  dir: string;
  url: string | undefined;
  /** Load this SQL file into a throwaway PostgreSQL and check that instead. */
  fixture?: string | undefined;
  /** The model as given (else the config's `tenancy`, with the overrides over it). */
  model?: TenancyConfig | undefined;
  schemas?: string[] | undefined;
  /** Probe as this role. */
  as?: string | undefined;
  strict?: boolean | undefined;
  /** Only these rules / tables. */
  rules?: string[] | undefined;
  tables?: string[] | undefined;
  /** Connections running the data rules at once (one snapshot). Default 3. */
  connections?: number;
  /** Per statement. Default 10 minutes. */
  statementTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface TenancyCheckResult {
  database: string;
  owner: string;
  tenants: string;
  key: string;
  findings: Finding[];
  checked: { tables: number; rules: number };
  /** The rules checked that found nothing. */
  passed: string[];
  /** Why the probe did not run (no --as, or a model without rls), when it did not. */
  probeSkipped?: string;
  /** No error-level finding (with `strict`, no finding at all). */
  ok: boolean;
}

export async function tenancyCheck(options: TenancyCheckOptions): Promise<TenancyCheckResult> {
  const config = await loadConfig(options.dir);
  const model = options.model ?? tenancyConfigFrom(config.tenancy, options);
  const settings = { ledgerSchema: config.ledgerSchema, largeTableRows: config.lint.largeTableRows };
  if (options.fixture) return onFixture(options, model, settings);
  return checkDatabase(options, model, settings);
}

/** What the check takes from the project's config besides the model. */
interface CheckSettings {
  ledgerSchema: string;
  /** `lint.largeTableRows`: past it, a policy no index serves is a finding (rls-policy-cost). */
  largeTableRows: number;
}

async function checkDatabase(
  options: TenancyCheckOptions,
  model: TenancyConfig,
  { ledgerSchema, largeTableRows }: CheckSettings,
): Promise<TenancyCheckResult> {
  const timeout = options.statementTimeoutMs ?? 10 * 60_000;
  const snapshotOptions = { connections: options.connections ?? 3, statementTimeoutMs: timeout };
  return withCheckSnapshot(options.url, snapshotOptions, async (snapshot) => {
    const catalog = await readCatalog(snapshot.leader.client, {
      ...(options.schemas?.length ? { schemas: options.schemas } : {}),
      excludeSchemas: [ledgerSchema, keepSchema],
      excludePrefixes: [stagingSchemaPrefix],
    });
    // keepSchema holds the scaffold's copies of detached and deleted rows (for its rollback), and the staging schemas
    // a consolidation's database sources are copied into, like the ledger: not the app's tables.
    const analysis = analyzeTenancy(catalog, model);
    const access = await readAccess(snapshot.leader.client, catalog.schemas, analysis.setting);
    const scope = buildScope(catalog, analysis, { only: options.tables, access, appRole: options.as });
    const active = selectRules(analysis, options.rules, catalog);
    const probeRules = active.filter((r) => r.rule.kind === 'probe');
    const probeSkipped =
      probeRules.length === 0
        ? options.as
          ? analysis.rls
            ? 'no probe rule selected'
            : 'the model has no rls'
          : undefined
        : !options.as
          ? 'no --as ROLE'
          : undefined;
    const ran = active.filter((r) => r.rule.kind !== 'probe' || !probeSkipped);
    const wanted = new Map(probeRules.map((r) => [r.rule.name, r.level]));
    // The server scans for the data rules; the probe (its own session, round trips more than work) runs beside them.
    const data = snapshot.run(dataQueries(scope, active));
    const probe =
      options.as && !probeSkipped
        ? probeIsolation(options.url, scope, options.as, timeout, { largeTableRows, rules: [...wanted.keys()] })
        : Promise.resolve([]);
    // Meanwhile the catalog rules: the parsers they need (WebAssembly, each a few hundred ms to load) load once
    // every scan is under way, so loading them delays no query.
    const fromCatalog = data.started.then(async () => {
      await loadParsers(parsersNeeded(scope, active));
      return catalogFindings(scope, active);
    });
    const [found, fromData, probed] = await Promise.all([fromCatalog, data.findings, probe]);
    const findings = [...found, ...fromData];
    for (const f of probed) {
      const level = wanted.get(f.rule);
      if (level) findings.push({ ...f, level });
    }
    const sorted = sortFindings(findings);
    return {
      database: snapshot.leader.description,
      owner: analysis.owner,
      tenants: analysis.tenants,
      key: analysis.key,
      findings: sorted,
      checked: { tables: scope.tables.length, rules: ran.length },
      passed: ran.map((r) => r.rule.name).filter((name) => !sorted.some((f) => f.rule === name)),
      ...(probeSkipped ? { probeSkipped } : {}),
      ok: !fails(sorted, Boolean(options.strict)),
    };
  });
}

/** Loads the parsers named (each once per process). */
async function loadParsers(needed: Set<Parser>): Promise<void> {
  await Promise.all([needed.has('expression') ? loadExpressionParser() : undefined, needed.has('body') ? loadBodyParsers() : undefined]);
}

/** `--fixture FILE`: the file loaded into a new database of a throwaway PostgreSQL, checked, and the server gone. */
function onFixture(options: TenancyCheckOptions, model: TenancyConfig, settings: CheckSettings): Promise<TenancyCheckResult> {
  return withFixtureDatabase(options.fixture as string, { log: options.log, purpose: 'tenancy check' }, (url) =>
    checkDatabase({ ...options, url }, model, settings),
  );
}

/** One rule's outcome as a test case (rehearse's JUnit, verify --tenancy): failed when it has an error-level finding. */
export interface RuleOutcome {
  id: string;
  ok: boolean;
  durationMs: number;
  message?: string;
}

/** `totalMs`, the check's time, is shared evenly among the rules, so a report that adds cases up counts it once. */
export function ruleOutcomes(result: TenancyCheckResult, totalMs = 0): RuleOutcome[] {
  const names = [...new Set([...result.findings.map((f) => f.rule), ...result.passed])];
  const durationMs = names.length ? Math.round(totalMs / names.length) : 0;
  return names.map((id) => {
    const findings = result.findings.filter((f) => f.rule === id);
    const errors = findings.filter((f) => f.level === 'error');
    const lines = findings.map((f) => `${f.level} ${f.table}: ${f.detail}${f.rows === null ? '' : ` (${f.rows} rows)`}`);
    return { id, ok: errors.length === 0, durationMs, ...(lines.length ? { message: lines.join('\n') } : {}) };
  });
}
