/**
 * Preload that lists every module a run loads (ESM through loader hooks, CommonJS through
 * Module._load), grouped by package, written as JSON to $BENCH_MODULES at exit:
 *   BENCH_MODULES=/tmp/m.json node --import ./bench/module-trace.mjs bin/tenantify --help
 * Bench-only.
 */
import { register } from 'node:module';
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { MessageChannel } from 'node:worker_threads';

const loaded = new Set();
const { port1, port2 } = new MessageChannel();
port1.on('message', (url) => loaded.add(url));
port1.unref();

const hooks = `
let port;
export function initialize(data) { port = data.port; }
export async function load(url, context, next) {
  port.postMessage(url);
  return next(url, context);
}
`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`, import.meta.url, { data: { port: port2 }, transferList: [port2] });

const require = createRequire(import.meta.url);
const Module = require('node:module');
const originalLoad = Module._load;
Module._load = function tracedLoad(request, parent, isMain) {
  try {
    loaded.add(`cjs:${Module._resolveFilename(request, parent, isMain)}`);
  } catch {
    // builtins and failures: not files
  }
  return originalLoad.apply(this, arguments);
};

process.on('exit', () => {
  const file = process.env.BENCH_MODULES;
  if (!file) return;
  const files = [...loaded].filter((u) => !u.startsWith('node:') && !u.startsWith('cjs:node:') && !u.startsWith('data:'));
  const groups = {};
  for (const u of files) {
    const path = u.replace(/^cjs:/, '').replace(/^file:\/\//, '');
    const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)?.[1] ?? (path.includes('/dist/') ? 'tenantify (dist)' : 'other');
    groups[pkg] = (groups[pkg] ?? 0) + 1;
  }
  writeFileSync(file, JSON.stringify({ total: files.length, byPackage: groups, files }, null, 2));
});
