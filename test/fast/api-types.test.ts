import pg from 'pg';
import { describe, expect, it } from 'vitest';

describe('the programmatic API and the host application', () => {
  it("importing tenantify leaves pg's global type parsers as the application set them", async () => {
    const int8 = (value: string): bigint => BigInt(value);
    pg.types.setTypeParser(pg.types.builtins.INT8, int8);
    const numeric = pg.types.getTypeParser(pg.types.builtins.NUMERIC, 'text');

    const api = await import('../../src/index.js');
    expect(typeof api.apply).toBe('function');

    expect(pg.types.getTypeParser(pg.types.builtins.INT8, 'text')).toBe(int8);
    expect(pg.types.getTypeParser(pg.types.builtins.NUMERIC, 'text')).toBe(numeric);
  });

  it("tenantify's own clients read int8 as a number where it fits, as a string beyond", async () => {
    const { clientTypes } = await import('../../src/db/connection.js');
    const parse = clientTypes.getTypeParser(pg.types.builtins.INT8, 'text') as (value: string) => unknown;
    expect(parse('42')).toBe(42);
    expect(parse('9223372036854775807')).toBe('9223372036854775807');
  });
});
