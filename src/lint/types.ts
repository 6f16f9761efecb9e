/** What lint finds: one shape for squawk's findings and tenantify's own. */

export type LintLevel = 'error' | 'warning';
export type RuleSetting = LintLevel | 'off';

export interface Finding {
  /** The unit the file belongs to (a rollback file's unit too). */
  unit: string;
  /** Relative to the plan directory. */
  file: string;
  line: number;
  rule: string;
  level: LintLevel;
  /** What is dangerous, then the safe rewrite. */
  message: string;
  source: 'squawk' | 'tenantify';
  allowed: boolean;
  /** The `-- tenantify:allow` reason, when allowed. */
  reason?: string;
}

export interface SquawkStatus {
  available: boolean;
  version?: string;
  /** Why it did not run, said once. */
  reason?: string;
  /** Files too large for it (streamed units, over 1 MB): only tenantify's own rules read them. */
  skipped?: string[];
}

export interface LintReport {
  findings: Finding[];
  squawk: SquawkStatus;
  /** unbatched-update-large-table needs table sizes from a database (-d). */
  tableSizes: 'catalog' | 'skipped';
}
