/* global require, __dirname */
/* eslint-disable @typescript-eslint/no-require-imports -- CommonJS, like bin/tenantify */
'use strict';
// bin/tenantify without V8's code cache, for bench/startup: the same prebuilt --help and
// --version, the same V8 flag, then the bundle by a plain require. Bench-only:
//   npx tsx bench/startup.ts --variant no-code-cache=bench/no-code-cache.cjs
const { readFileSync } = require('node:fs');
const { join } = require('node:path');

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')).version}\n`);
  process.exit(0);
}
if (args.length === 1 && (args[0] === '--help' || args[0] === '-h')) {
  process.stdout.write(readFileSync(join(__dirname, '..', 'dist', 'help.txt'), 'utf8'));
  process.exit(0);
}
require('node:v8').setFlagsFromString('--liftoff-only');
require('../dist/tenantify.cjs');
