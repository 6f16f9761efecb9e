/**
 * The direction of travel (argv → cli → app → plan/exec/tenancy/lint → db), checked with type
 * imports counted: a type-only cycle still ties two modules together for the reader.
 */
const layer = (name, mayNotUse, comment) => ({
  name: `${name}-layer`,
  comment,
  severity: 'error',
  from: { path: `^src/${name}/` },
  to: { path: `^src/(${mayNotUse.join('|')})/` },
});

module.exports = {
  forbidden: [
    { name: 'no-circular', comment: 'modules depend one way: no cycle, type imports included', severity: 'error', from: {}, to: { circular: true } },
    layer('plan', ['db', 'exec', 'app', 'cli', 'ui', 'lint'], 'the planner and unit loading sit below every layer that does I/O'),
    layer('db', ['exec', 'app', 'cli', 'ui', 'lint', 'tenancy'], 'db is the bottom layer'),
    layer('exec', ['app', 'cli', 'ui', 'lint'], 'the executor serves the app functions, never calls back up'),
    layer('lint', ['app', 'cli', 'ui', 'exec'], 'lint reads plans, never the app above it'),
    layer('tenancy', ['app', 'cli', 'ui', 'exec'], 'the tenancy cores sit below the app functions'),
    layer('app', ['cli'], 'the programmatic API never reaches into the command line'),
    layer('ui', ['cli'], 'views print what the app functions return, and never reach into the command line'),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
