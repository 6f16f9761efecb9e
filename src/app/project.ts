/** Reading a plan directory: configuration first, then the units. Reading touches no database. */
import { loadConfig, type Config } from '../plan/config.js';
import { loadPlan } from '../plan/load.js';
import type { Unit } from '../plan/types.js';

export interface Project {
  directory: string;
  config: Config;
  units: Unit[];
}

export async function loadProject(directory: string): Promise<Project> {
  const config = await loadConfig(directory);
  const units = await loadPlan(directory, config);
  return { directory, config, units };
}

/**
 * Loads the project while `start` works on the database (connects, takes the lock, reads
 * the ledger: mostly waiting on the server) once the configuration is known. A plan error
 * still comes first: `start` is then told to stop (its signal aborts), what it opened is
 * given to `release`, and the plan error is thrown. Otherwise `start`'s own error, if any.
 */
export async function loadProjectWhile<T>(
  directory: string,
  start: (config: Config, signal: AbortSignal) => Promise<T>,
  release: (value: T) => Promise<void>,
): Promise<{ project: Project; started: T }> {
  const config = await loadConfig(directory);
  const abort = new AbortController();
  const starting = start(config, abort.signal);
  starting.catch(() => {}); // thrown below, once the plan is known to be good
  let units: Unit[];
  try {
    units = await loadPlan(directory, config);
  } catch (error) {
    abort.abort();
    await starting.then(release, () => {});
    throw error;
  }
  return { project: { directory, config, units }, started: await starting };
}
