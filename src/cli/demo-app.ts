/**
 * The demo's legacy app: one connection that books and changes reservations the way the
 * restaurant back office does, knowing nothing of tenants, while the upgrade runs beside it.
 * It counts its writes and errors and keeps its worst latency, which is what the app's users
 * would feel of the upgrade.
 */
import pg from 'pg';

export interface LegacyWrites {
  count: number;
  errors: number;
  worstMs: number;
  firstError: string | undefined;
}

/** A write every `pauseMs`: a new reservation at a random restaurant, or a change to an existing one. */
export function startLegacyApp(url: string, pauseMs = 20): { stop(): Promise<LegacyWrites> } {
  const writes: LegacyWrites = { count: 0, errors: 0, worstMs: 0, firstError: undefined };
  let stopping = false;
  const client = new pg.Client({ connectionString: url, application_name: 'legacy restaurant app' });
  client.on('error', () => {});

  const write = async (i: number): Promise<void> => {
    const restaurant = 1 + ((i * 7919) % 240);
    const started = performance.now();
    try {
      if (i % 3 === 2) {
        await client.query('UPDATE reservations SET party_size = party_size % 12 + 1, updated_at = now() WHERE id = $1', [
          1 + ((i * 104729) % 12000),
        ]);
      } else {
        await client.query(
          "INSERT INTO reservations (restaurant_id, date, party_size, updated_at) VALUES ($1, now() + interval '1 day', 2, now())",
          [restaurant],
        );
      }
      writes.count += 1;
    } catch (error) {
      writes.errors += 1;
      writes.firstError ??= (error as Error).message;
    }
    writes.worstMs = Math.max(writes.worstMs, performance.now() - started);
  };

  const loop = (async () => {
    await client.connect();
    for (let i = 0; !stopping; i += 1) {
      await write(i);
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
    await client.end();
  })();

  return {
    async stop() {
      stopping = true;
      await loop;
      return writes;
    },
  };
}
