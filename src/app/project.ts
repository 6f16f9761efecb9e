/** Reading a plan directory: configuration first, then the units. Nothing touches a database. */
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
