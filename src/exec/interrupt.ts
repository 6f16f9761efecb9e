/**
 * SIGINT / SIGTERM during a run: the first asks the run to stop at the next safe point
 * (cancelling the statement in flight, so its transaction rolls back); a second one leaves
 * at once (the server rolls back whatever was open).
 */
export class Interrupt {
  requested: string | undefined;
  private cancel: (() => Promise<void>) | undefined;
  private readonly handlers = new Map<NodeJS.Signals, () => void>();
  private unfollow: (() => void) | undefined;

  constructor(private readonly log: (text: string) => void) {}

  install(): void {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const handler = (): void => {
        if (this.requested) {
          this.log(`${signal} again: leaving now; the server rolls back the open transaction`);
          process.exit(130);
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
  request(reason: string, cancel = true): void {
    if (this.requested) return;
    this.requested = reason;
    this.log(`${reason}: stopping at the next safe point (the current transaction is finished or rolled back)...`);
    if (cancel) void this.cancel?.().catch(() => {});
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

  /** At a safe point (between statements, between batches): stops the work once a signal asked to. */
  throwIfRequested(): void {
    if (this.requested) throw new Interruption(this.requested);
  }

  /** What to do on the first signal while a long statement runs (cancel it), or undefined. */
  onRequest(cancel: (() => Promise<void>) | undefined): void {
    this.cancel = cancel;
  }
}

/** Thrown at a safe point after SIGINT / SIGTERM; the lifecycle records it and tells the DBA how to resume. */
export class Interruption extends Error {
  constructor(readonly signal: string) {
    super(`interrupted by ${signal}`);
    this.name = 'Interruption';
  }
}
