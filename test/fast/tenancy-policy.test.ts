import { beforeAll, describe, expect, it } from 'vitest';
import { isNotNullCheck, judgeExpression, judgePolicy, loadExpressionParser } from '../../src/tenancy/policy-expr.js';

const compare = { key: 'organization_id', setting: 'app.tenant_id' };

beforeAll(async () => {
  await loadExpressionParser();
});

describe('judgeExpression: does it hold every row to the tenant of the setting?', () => {
  it.each([
    "(organization_id = (current_setting('app.tenant_id'::text))::integer)",
    "organization_id = current_setting('app.tenant_id')::int",
    "(current_setting('app.tenant_id', true))::bigint = organization_id",
    "(organization_id)::text = current_setting('app.tenant_id'::text, true)",
    "tasks.organization_id = (current_setting('APP.TENANT_ID'))::uuid",
    "organization_id = (SELECT current_setting('app.tenant_id')::int)",
    "(organization_id = (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::bigint)",
    "organization_id = COALESCE(current_setting('app.tenant_id', true), '0')::int",
    "(organization_id = current_setting('app.tenant_id')::int) AND (deleted_at IS NULL)",
    "(archived OR NOT archived) AND organization_id = current_setting('app.tenant_id')::int",
    "(organization_id = current_setting('app.tenant_id')::int AND a) OR (organization_id = current_setting('app.tenant_id', true)::int AND b)",
  ])('constrains: %s', (text) => {
    const verdict = judgeExpression(text, compare);
    expect(verdict).toMatchObject({ constrains: true, alwaysTrue: false });
  });

  it('an OR branch that admits rows when the setting is unset does not constrain, and the fault names that branch', () => {
    const verdict = judgeExpression(
      "((organization_id = (current_setting('app.tenant_id'::text))::integer) OR (current_setting('app.tenant_id'::text, true) IS NULL))",
      compare,
    );
    expect(verdict.constrains).toBe(false);
    expect(verdict.alwaysTrue).toBe(false);
    expect(verdict.reason).toBe(
      "current_setting('app.tenant_id'::text, true) IS NULL admits rows without comparing organization_id with current_setting('app.tenant_id')",
    );
  });

  it.each([
    ["organization_id = current_setting('app.other_id')::int", 'another setting'],
    ["account_id = current_setting('app.tenant_id')::int", 'another column'],
    ["organization_id <> current_setting('app.tenant_id')::int", 'another operator'],
    ['organization_id = 42', 'a constant'],
    ["NOT (organization_id <> current_setting('app.tenant_id')::int)", 'a negation (not recognised: said so)'],
    ["organization_id = current_setting('app.tenant_id')::int OR is_public", 'an OR with an unrelated column'],
    ['owner_id = current_user::text', 'the current user'],
    ["organization_id = COALESCE(current_setting('app.tenant_id', true)::int, organization_id)", 'a fallback to the row itself'],
    ["organization_id = NULLIF(current_setting('app.other', true), '')::int", 'NULLIF of another setting'],
  ])('does not constrain: %s (%s)', (text) => {
    expect(judgeExpression(text, compare).constrains).toBe(false);
  });

  it.each([
    'true',
    '1 = 1',
    "'t'::boolean",
    'NOT false',
    "organization_id = current_setting('app.tenant_id')::int OR true",
    '(1 = 1) AND (2 > 1)',
    'organization_id = organization_id',
    'NULL IS NULL',
  ])('always true: %s', (text) => {
    expect(judgeExpression(text, compare).alwaysTrue).toBe(true);
  });

  it.each(['false', '1 = 2', "organization_id = current_setting('app.tenant_id')::int", 'a = b', 'NULL = NULL'])(
    'not always true: %s',
    (text) => {
      expect(judgeExpression(text, compare).alwaysTrue).toBe(false);
    },
  );

  it('the key of the owner table when it is the tenants table is its primary key', () => {
    expect(
      judgeExpression("(id = (current_setting('app.tenant_id'::text))::integer)", { key: 'id', setting: 'app.tenant_id' }).constrains,
    ).toBe(true);
  });

  it('a text that does not parse is an error, not a verdict', () => {
    expect(() => judgeExpression('organization_id = = 1', compare)).toThrow();
  });
});

describe('judgePolicy', () => {
  const isolated = "(organization_id = (current_setting('app.tenant_id'::text))::integer)";

  it('USING and WITH CHECK on the key: no fault', () => {
    expect(judgePolicy({ command: 'all', permissive: true, using: isolated, withCheck: isolated }, compare)).toEqual({});
  });

  it('ALL with USING on the key and no WITH CHECK: USING holds new rows, no fault', () => {
    expect(judgePolicy({ command: 'all', permissive: true, using: isolated, withCheck: null }, compare)).toEqual({});
  });

  it('an UPDATE policy whose WITH CHECK admits anything lets writes through, and only that', () => {
    expect(judgePolicy({ command: 'update', permissive: true, using: isolated, withCheck: 'true' }, compare)).toEqual({
      writesThrough: 'WITH CHECK (true) admits any row',
    });
  });

  it('an INSERT policy without WITH CHECK lets writes through', () => {
    expect(judgePolicy({ command: 'insert', permissive: true, using: null, withCheck: null }, compare).writesThrough).toMatch(
      /without WITH CHECK/,
    );
  });

  it('USING (true): always true; as ALL without WITH CHECK, writes through too', () => {
    expect(judgePolicy({ command: 'all', permissive: true, using: 'true', withCheck: null }, compare)).toEqual({
      alwaysTrue: 'USING (true) admits every row',
      writesThrough: expect.stringMatching(/no WITH CHECK/),
    });
  });

  it('a SELECT policy with an OR branch ignores the key; there is no write to judge', () => {
    const faults = judgePolicy(
      { command: 'select', permissive: true, using: `${isolated} OR (current_setting('app.tenant_id', true) IS NULL)`, withCheck: null },
      compare,
    );
    expect(Object.keys(faults)).toEqual(['ignoresKey']);
  });

  it('a restrictive policy only narrows: not judged', () => {
    expect(judgePolicy({ command: 'all', permissive: false, using: 'true', withCheck: null }, compare)).toEqual({});
  });
});

describe('isNotNullCheck', () => {
  it.each([
    ['CHECK ((organization_id IS NOT NULL))', true],
    ['CHECK ((organization_id IS NOT NULL)) NOT VALID', true],
    ['CHECK (((organization_id IS NOT NULL) AND (id > 0)))', true],
    ['CHECK ((account_id IS NOT NULL))', false],
    ['CHECK (((organization_id IS NOT NULL) OR (id > 0)))', false],
    ['CHECK ((organization_id IS NULL))', false],
  ])('%s: %s', (definition, expected) => {
    expect(isNotNullCheck(definition, 'organization_id')).toBe(expected);
  });
});
