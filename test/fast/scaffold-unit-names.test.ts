/**
 * Scaffolded unit file names (issue 24): tables whose names fold to the same words get
 * units of distinct names, the one written as its words keeping them and the others a hash
 * of their exact name.
 */
import { describe, expect, it } from 'vitest';
import { tableSlugs } from '../../src/tenancy/scaffold/model.js';

describe('unit names of tables that fold alike', () => {
  const slug = tableSlugs([
    'public.Order',
    'public.order',
    'public.teamMember',
    'public.team_member',
    'public.TeamMember',
    '"a.b".c',
    'a.b_c',
    'public.invoices',
    'sales.invoices',
  ]);

  it('keeps a name that is its own words, and hashes its twins', () => {
    expect(slug('public.order')).toBe('order');
    expect(slug('public.Order')).toMatch(/^order_[0-9a-f]{8}$/);
    expect(slug('public.team_member')).toBe('team_member');
    expect(slug('public.teamMember')).toMatch(/^team_member_[0-9a-f]{8}$/);
    expect(slug('public.TeamMember')).toMatch(/^team_member_[0-9a-f]{8}$/);
    expect(slug('a.b_c')).toBe('a_b_c');
    expect(slug('"a.b".c')).toMatch(/^a_b_c_[0-9a-f]{8}$/);
  });

  it('gives every table its own name, the same in every run', () => {
    const names = ['public.Order', 'public.order', 'public.teamMember', 'public.team_member', 'public.TeamMember', '"a.b".c', 'a.b_c'].map(
      slug,
    );
    expect(new Set(names).size).toBe(names.length);
    expect(tableSlugs(['public.Order', 'public.order'])('public.Order')).toBe(slug('public.Order'));
  });

  it('leaves names that fold to nothing else as they were', () => {
    expect(slug('public.invoices')).toBe('invoices');
    expect(slug('sales.invoices')).toBe('sales_invoices');
    expect(slug('public.organizations')).toBe('organizations');
  });
});
