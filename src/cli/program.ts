/**
 * The commander program. Kept light: every command's code is imported only when that
 * command runs, so `tenantify --help` starts about as fast as node itself.
 */
import { Command, CommanderError, Option } from 'commander';
import { toolVersion } from '../version.js';
import type { CommonOptions } from './common.js';

type Loader = () => Promise<{ default: (options: CommonOptions & Record<string, unknown>, args: string[]) => Promise<number> }>;

function withCommonOptions(command: Command): Command {
  return command
    .option('-d, --database-url <url>', 'target database (else DATABASE_URL, else the libpq PG* variables)')
    .option('--dir <path>', 'plan directory', '.')
    .option('--json', 'print exactly one JSON document on stdout; progress and logs go to stderr')
    .option('--no-color', 'no colours (also NO_COLOR, or when stdout is not a terminal)');
}

/** `--targets FILE` or `--targets-query SQL`: the command runs across a fleet of databases (see Fleets in the README). */
function withFleetOptions(command: Command, extra: { parallel: boolean; canary: boolean; onError: boolean }): Command {
  command
    .option('--targets <file>', 'run across a fleet: one target a line, `name URL` or a bare URL; # comments')
    .option('--targets-query <sql>', 'run across a fleet: the `name, url` rows this query returns on -d');
  if (extra.parallel)
    command.addOption(
      new Option(
        '--parallel <n>',
        'with --targets: connections the fleet opens at most (targets at once; backfill workers count)',
      ).argParser(positiveInt),
    );
  if (extra.canary)
    command.addOption(
      new Option('--canary <n>', 'with --targets: the first N targets are applied and verified before any other starts').argParser(
        positiveInt,
      ),
    );
  if (extra.onError)
    command.addOption(
      new Option('--on-error <mode>', 'with --targets: after a failed target, stop (running targets end their unit) or continue').choices([
        'stop',
        'continue',
      ]),
    );
  return command;
}

function action(load: Loader) {
  return async (...received: unknown[]): Promise<void> => {
    const command = received[received.length - 1] as Command;
    const options = command.optsWithGlobals() as CommonOptions & Record<string, unknown>;
    const args = command.args;
    const { handleClosedStdout } = await import('../ui/output.js');
    handleClosedStdout(isReadOnly(command, args));
    const { runCommand } = await import('./run.js');
    process.exitCode = await runCommand(options, async () => (await load()).default(options, args));
  };
}

/** Commands that change nothing: a closed stdout ends them at once (see handleClosedStdout). */
function isReadOnly(command: Command, args: string[]): boolean {
  const name = command.parent?.name() === 'tenancy' ? `tenancy ${command.name()}` : command.name();
  if (name === 'snapshots') return (args[0] ?? 'list') === 'list';
  if (name === 'tenancy analyze') return !command.opts()['write'];
  return ['plan', 'status', 'verify', 'lint', 'tenancy check'].includes(name);
}

export function buildProgram(): Command {
  const program = new Command('tenantify')
    .description('Upgrade a live legacy PostgreSQL database to a multi-tenant model, unit by unit, safely.')
    .version(toolVersion(), '-V, --version')
    .showHelpAfterError('(run `tenantify --help` for usage)')
    .exitOverride();

  withCommonOptions(program.command('init'))
    .description('scaffold a plan directory (migrations/, backfills/, rollbacks/, tenantify.config.json)')
    .action(action(() => import('./commands/init.js')));

  withCommonOptions(program.command('plan'))
    .description('every unit in order: kind, status, transaction mode, snapshot scope, warnings')
    .action(action(() => import('./commands/plan.js')));

  withFleetOptions(withCommonOptions(program.command('apply')), { parallel: false, canary: true, onError: true })
    .description('run pending units: precheck, snapshot, body, verify, ledger, commit')
    .option('--to <id>', 'stop after this unit')
    .option('--dry-run', 'run transactional units in one transaction that is rolled back; report what would happen')
    .option('--auto-rollback', 'when a unit, precheck or verify fails, revert the units this run applied')
    .option('--no-snapshot', 'take no pg_dump snapshots (recorded in the ledger)')
    .addOption(
      new Option('--parallel <n>', 'workers for batched backfills; with --targets, the connections the fleet opens at most').argParser(
        positiveInt,
      ),
    )
    .action(action(() => import('./commands/apply.js')));

  withFleetOptions(withCommonOptions(program.command('verify')), { parallel: true, canary: false, onError: false })
    .description('re-run the verify queries of applied units; a table of pass/fail')
    .option('--unit <id>', 'only this unit')
    .option('--tenancy', "also prove tenant isolation (`tenancy check`, from the config's tenancy model)")
    .action(action(() => import('./commands/verify.js')));

  withFleetOptions(withCommonOptions(program.command('rollback')), { parallel: true, canary: false, onError: true })
    .description('revert applied units, newest first; bare: the newest one')
    .option('--to <id>', 'revert down to this unit (it stays applied)')
    .addOption(new Option('--steps <n>', 'revert this many units').argParser(positiveInt))
    .option('--all', 'revert every applied unit')
    .option('--from-snapshot', "restore each unit's tables from its snapshot instead of running its rollback file")
    .option('-y, --yes', 'do not ask for confirmation (required without a terminal)')
    .action(action(() => import('./commands/rollback.js')));

  withFleetOptions(withCommonOptions(program.command('status')), { parallel: true, canary: false, onError: false })
    .description("the ledger: where the plan stands, the last run, a running backfill's progress")
    .action(action(() => import('./commands/status.js')));

  withCommonOptions(program.command('snapshots'))
    .description('the pg_dump snapshots: list | restore <unit> | prune --keep N')
    .argument('[action]', 'list, restore or prune', 'list')
    .argument('[unit]', 'the unit whose snapshot to restore')
    .addOption(new Option('--keep <n>', 'for prune: runs to keep').argParser(positiveInt))
    .option('-y, --yes', 'do not ask for confirmation (required without a terminal)')
    .action(action(() => import('./commands/snapshots.js')));

  withCommonOptions(program.command('rehearse'))
    .description('the whole round trip on a throwaway Postgres, for CI')
    .option('--fixture <file>', 'load this SQL file instead of copying a live database')
    .option('--schema-only', 'copy only the schema of the source database')
    .option('--junit <file>', 'write a JUnit report')
    .option('--citus', 'rehearse on a throwaway Citus cluster (a coordinator and workers) instead of one PostgreSQL')
    .addOption(new Option('--workers <n>', 'with --citus: workers beside the coordinator (default 2)').argParser(positiveInt))
    .action(action(() => import('./commands/rehearse.js')));

  withCommonOptions(program.command('lint'))
    .description("risky DDL per unit: squawk's rules and tenantify's own")
    .action(action(() => import('./commands/lint.js')));

  withCommonOptions(program.command('repair'))
    .description("accept an applied unit's edited file (new checksum, new verify queries), recorded with who, when and why")
    .argument('<unit>', 'the applied unit whose file was edited on purpose')
    .requiredOption('--reason <text>', 'why the file changed (kept in the ledger)')
    .action(action(() => import('./commands/repair.js')));

  const tenancy = program
    .command('tenancy')
    .description('the tenancy model: analyze | scaffold | check | consolidate (see docs/tenancy.md)');
  const modelOptions = (command: Command): Command =>
    withCommonOptions(command)
      .option('--owner <table>', "the legacy table whose rows become tenants (else the config's tenancy.owner)")
      .option('--tenants <table>', 'the tenant table (default organizations)')
      .option('--key <column>', "the tenant key column (default: the tenant table's singular + _id)")
      .option('--schema <names...>', 'schemas to read (default: every schema but the system ones and the ledger)');

  modelOptions(tenancy.command('analyze'))
    .description('how each table finds its tenant, from the foreign-key graph and the data')
    .option('--fixture <file>', 'load this SQL file into a throwaway PostgreSQL and analyze that')
    .option('--no-data', 'catalog only: skip the counts of unresolved rows and conflicts')
    .option('--write', 'store the model in tenantify.config.json (other keys kept)')
    .addOption(new Option('--format <format>', 'draw the graph instead of the table').choices(['table', 'mermaid', 'dot']))
    .action(action(() => import('./commands/tenancy-analyze.js')));

  modelOptions(tenancy.command('check'))
    .description('prove isolation: data, catalog and (--as ROLE) a live probe')
    .option('--fixture <file>', 'load this SQL file into a throwaway PostgreSQL and check that')
    .option('--as <role>', 'probe as this role, in transactions that are always rolled back')
    .option('--strict', 'warnings count as failures too (exit 3)')
    .option('--rule <rules...>', 'only these rules')
    .option('--table <tables...>', 'only these tables')
    .action(action(() => import('./commands/tenancy-check.js')));

  modelOptions(tenancy.command('scaffold'))
    .description('write the whole tenant upgrade plan as units, safe on a live database')
    .option('--composite', 'unique (key, id) on referenced tenant tables and foreign keys that include the key')
    .option('--rls', 'enable and force row level security with a policy on the key')
    .option(
      '--citus',
      'then place the tenancy on Citus: primary keys (key, id), reference tables, tables distributed by the key (implies --composite)',
    )
    .option('--fixture <file>', 'read the schema from this SQL file loaded into a throwaway PostgreSQL')
    .option(
      '--prisma <dir>',
      "a Prisma app's folder (schema.prisma, migrations/): edit its schema, add the upgrade's migration, record it when applied",
    )
    .action(action(() => import('./commands/tenancy-scaffold.js')));

  withCommonOptions(tenancy.command('consolidate'))
    .description('bring one schema per customer into one shared, keyed schema: a plan, one unit per source')
    .option('--from-schemas <pattern>', "the sources: schemas of the target database whose names match this LIKE pattern ('customer_%')")
    .option('--from-databases <file>', 'the sources: one database per line, `name URL` (streamed with COPY into the target when applied)')
    .option('--source-schema <schema>', 'with --from-databases: the schema of each source database that holds its tables (default public)')
    .option('--into <schema>', 'the schema of the shared tables (default public)')
    .option('--exclude <names...>', 'leave these sources out')
    .option('--reference <name>', 'the source every other is compared with (default: the first by name)')
    .option('--tenants <table>', 'the tenants table the plan creates (default organizations)')
    .option('--key <column>', "the tenant key column (default: the tenants table's singular + _id)")
    .addOption(
      new Option('--ids <mode>', 'keep: ids stay, keys become (key, id); remap: new ids, old ones kept in mapping tables')
        .choices(['keep', 'remap'])
        .default('keep'),
    )
    .option('--batch-size <rows>', 'rows per copy statement (default 10000)', positiveInt)
    .option('--parallel <n>', 'schema sources copied at once, each on a session of its own (default 1)', positiveInt)
    .option('--freeze', "the application's writes to a source wait while it is copied (a lock: reads go on)")
    .option(
      '--citus',
      'with --from-schemas: the shared tables distributed by the key and colocated, the tenants and lookup tables reference tables',
    )
    .action(action(() => import('./commands/tenancy-consolidate.js')));

  return program;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CommanderError(2, 'tenantify.invalidArgument', `not a positive integer: ${value}`);
  return n;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are successes; any other commander complaint is a usage error.
      const shown = error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help';
      process.exitCode = shown ? 0 : 2;
      return;
    }
    throw error;
  }
}
