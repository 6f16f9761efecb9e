/**
 * SIGINT / SIGTERM during a run. The first cancels whatever is in flight (the statement of
 * every session the run works on, a pg_dump), so the unit's transaction rolls back and the
 * run stops at the next safe point with the ledger told why. A second one does the same
 * without waiting for anything of the run's: the run's sessions are ended from another
 * connection (the server rolls back what was open), the ledger is told on that connection,
 * and the process leaves. Either way the exit is 130 with nothing half-applied and no unit
 * left `running`.
 */
export class Interrupt {
  requested: string | undefined;
  private readonly cancels = new Map<unknown, { cancel: () => Promise<void>; depth: number }>();
  private readonly controller = new AbortController();
  private force: ((signal: string) => Promise<void>) | undefined;
  /** Set at the second signal: settles never (the process leaves); the run's own flow waits on it rather than report the sessions it lost. */
  leaving: Promise<never> | undefined;
  private readonly handlers = new Map<NodeJS.Signals, () => void>();
  private unfollow: (() => void) | undefined;

  constructor(private readonly log: (text: string) => void) {}

  /** Aborted at the first signal: what runs outside a session (pg_dump) stops on it. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  install(): void {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const handler = (): void => {
        if (this.requested) {
          this.leaving ??= this.leave(signal);
          return;
        }
        this.request(signal);
      };
      this.handlers.set(signal, handler);
      process.on(signal, handler);
    }
  }

  /**
   * Stops the run at the next safe point, as a first signal does. `cancel` (a signal's way)
   * also cancels the statement in flight, so its transaction rolls back; without it the
   * statement and its transaction end as they would (a fleet stopping on another target's error).
   */
  request(reason: string, cancelNow = true): void {
    if (this.requested) return;
    this.requested = reason;
    if (!cancelNow) {
      this.log(`${reason}: stopping at the next safe point (the current unit or batch finishes)...`);
      return;
    }
    this.log(`${reason}: cancelling what runs now; the current unit is rolled back and the run stops (again to stop faster)...`);
    this.controller.abort();
    for (const { cancel } of this.cancels.values()) void cancel().catch(() => {});
  }

  /** Requests a stop when `signal` aborts (until uninstall): its reason is the reason, and SIGINT or SIGTERM also cancels. */
  follow(signal: AbortSignal | undefined): void {
    if (!signal) return;
    const stop = (): void => {
      const reason = String(signal.reason ?? 'stop');
      this.request(reason, reason === 'SIGINT' || reason === 'SIGTERM');
    };
    if (signal.aborted) return stop();
    signal.addEventListener('abort', stop, { once: true });
    // A fleet's signal outlives each target's run: the run stops listening when it ends.
    this.unfollow = () => signal.removeEventListener('abort', stop);
  }

  uninstall(): void {
    this.unfollow?.();
    this.unfollow = undefined;
    for (const [signal, handler] of this.handlers) process.removeListener(signal, handler);
    this.handlers.clear();
  }

  /** At a safe point (between steps, statements, batches): stops the work once a signal asked to. */
  throwIfRequested(): void {
    if (this.requested) throw new Interruption(this.requested);
  }

  /**
   * While `fn` runs, a first signal calls `cancel` (pg_cancel_backend of the session `key`
   * names). Nested calls for one key share one cancel; calls for several keys (a batched
   * backfill's workers) are all cancelled.
   */
  async during<T>(key: unknown, cancel: () => Promise<void>, fn: () => Promise<T>): Promise<T> {
    const held = this.cancels.get(key);
    if (held) held.depth++;
    else this.cancels.set(key, { cancel, depth: 1 });
    try {
      return await fn();
    } finally {
      const entry = this.cancels.get(key);
      if (entry && --entry.depth === 0) this.cancels.delete(key);
    }
  }

  /** What a second signal does before the process leaves: end the run's sessions and tell the ledger (apply.ts). */
  onForce(force: ((signal: string) => Promise<void>) | undefined): void {
    this.force = force;
  }

  private async leave(signal: string): Promise<never> {
    this.log(`${signal} again: ending the run's sessions now (the server rolls back the open transaction)...`);
    // A server that does not answer must not keep the operator waiting.
    const bounded = new Promise<void>((resolve) => setTimeout(resolve, 10_000).unref());
    await Promise.race([
      this.force?.(signal).catch((error: unknown) => this.log(`could not tell the ledger: ${(error as Error).message}`)),
      bounded,
    ]);
    process.exit(130);
  }
}

/** Thrown at a safe point after SIGINT / SIGTERM; the lifecycle records it and tells the DBA how to resume. */
export class Interruption extends Error {
  constructor(readonly signal: string) {
    super(`interrupted by ${signal}`);
    this.name = 'Interruption';
  }
}
