/**
 * The pure Prisma side of `tenancy scaffold --prisma`: reading schema.prisma's models,
 * the tenancy's edits in the schema's own convention, minimal text edits, and the
 * migration and recording unit as text. No database, no Prisma CLI.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { prismaChecksum, prismaMigrationSql, recordUnit } from '../../src/tenancy/prisma/migration.js';
import { editSchema, formatTouched, readModels } from '../../src/tenancy/prisma/schema-file.js';
import { tenancyEdits, type TenancyFacts } from '../../src/tenancy/prisma/tenancy-edits.js';

const camelSchema = `// the team's comment
datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}

model User {
  id       Int       @id @default(autoincrement())
  fullName String    @map("full_name") // shown in the header
  projects Project[]

  @@map("users")
}

model Project {
  id      Int  @id
  ownerId Int  @map("owner_id")
  owner   User @relation(fields: [ownerId], references: [id])

  @@index([ownerId])
  @@map("projects")
}
`;

const snakeSchema = `model accounts {
  id    String  @id @db.Uuid
  name  String
  teams teams[]
}

model teams {
  id         Int      @id
  account_id String   @db.Uuid
  accounts   accounts @relation(fields: [account_id], references: [id])
}

model notes {
  id Int @id
}
`;

function facts(overrides: Partial<TenancyFacts> = {}): TenancyFacts {
  return {
    tenantsTable: 'organizations',
    createsTenants: true,
    tenantsPk: 'id',
    ownerTable: 'users',
    legacyColumn: 'legacy_users_id',
    keyed: [
      {
        table: 'users',
        keyColumn: 'organization_id',
        addsKey: true,
        optional: false,
        foreignKey: 'users_organization_id_fkey',
        index: 'users_organization_id_idx',
      },
      {
        table: 'projects',
        keyColumn: 'organization_id',
        addsKey: true,
        optional: true,
        foreignKey: 'projects_org_fk',
        index: 'projects_organization_id_idx',
      },
      { table: 'audit', keyColumn: 'organization_id', addsKey: true, optional: false, foreignKey: undefined, index: undefined },
    ],
    ...overrides,
  };
}

describe('readModels', () => {
  it('maps models to tables and fields to columns, @map and @@map included', () => {
    const models = readModels(camelSchema);
    expect(models.map((m) => [m.name, m.table])).toEqual([
      ['User', 'users'],
      ['Project', 'projects'],
    ]);
    expect(models[0]?.fields.map((f) => [f.name, f.column, f.type, f.list, f.isId])).toEqual([
      ['id', 'id', 'Int', false, true],
      ['fullName', 'full_name', 'String', false, false],
      ['projects', 'projects', 'Project', true, false],
    ]);
    expect(readModels(snakeSchema)[0]?.fields[0]?.nativeType).toBe('@db.Uuid');
  });
});

describe('tenancyEdits', () => {
  it('camelCase schema: key fields @map-ped, relations both ways, a new PascalCase tenants model; constraint names only where they differ', () => {
    const plan = tenancyEdits(readModels(camelSchema), facts());
    expect(plan.unmapped).toEqual(['audit']);
    expect(plan.touched).toEqual(['User', 'Project', 'Organization']);
    expect(plan.edits).toEqual([
      {
        model: 'User',
        fields: [
          'organizationId BigInt @map("organization_id")',
          'organization Organization @relation(fields: [organizationId], references: [id], onDelete: NoAction, onUpdate: NoAction)',
        ],
        attributes: ['@@index([organizationId])'],
      },
      {
        model: 'Project',
        fields: [
          'organizationId BigInt? @map("organization_id")',
          'organization Organization? @relation(fields: [organizationId], references: [id], onDelete: NoAction, onUpdate: NoAction, map: "projects_org_fk")',
        ],
        attributes: ['@@index([organizationId])'],
      },
    ]);
    expect(plan.added).toEqual([
      {
        name: 'Organization',
        lines: [
          'id BigInt @id @default(autoincrement())',
          'legacyUsersId Int @unique @map("legacy_users_id")',
          'createdAt DateTime @default(now()) @map("created_at") @db.Timestamptz(6)',
          'users User[]',
          'projects Project[]',
          '',
          '@@map("organizations")',
        ],
      },
    ]);
  });

  it('fields named as columns: the key and relations named like prisma db pull; an existing tenants model gets the back relation, its id type and native type', () => {
    const plan = tenancyEdits(readModels(snakeSchema), {
      tenantsTable: 'accounts',
      createsTenants: false,
      tenantsPk: 'id',
      ownerTable: 'accounts',
      legacyColumn: 'legacy_accounts_id',
      keyed: [
        { table: 'teams', keyColumn: 'account_id', addsKey: false, optional: false, foreignKey: undefined, index: 'teams_account_id_idx' },
        { table: 'notes', keyColumn: 'account_id', addsKey: true, optional: false, foreignKey: 'notes_account_id_fkey', index: undefined },
      ],
    });
    expect(plan.added).toEqual([]);
    expect(plan.edits).toEqual([
      { model: 'teams', fields: [], attributes: ['@@index([account_id])'] },
      {
        model: 'notes',
        fields: [
          'account_id String @db.Uuid',
          'accounts accounts @relation(fields: [account_id], references: [id], onDelete: NoAction, onUpdate: NoAction)',
        ],
        attributes: [],
      },
      { model: 'accounts', fields: ['notes notes[]'], attributes: [] },
    ]);
  });

  it('a second relation between the same two models is named on both sides', () => {
    const plan = tenancyEdits(readModels(snakeSchema), {
      tenantsTable: 'accounts',
      createsTenants: false,
      tenantsPk: 'id',
      ownerTable: 'accounts',
      legacyColumn: 'legacy_accounts_id',
      keyed: [
        { table: 'teams', keyColumn: 'tenant_id', addsKey: true, optional: false, foreignKey: 'teams_tenant_id_fkey', index: undefined },
      ],
    });
    expect(plan.edits[0]?.fields[1]).toBe(
      'accounts2 accounts @relation("teamsTenantId", fields: [tenant_id], references: [id], onDelete: NoAction, onUpdate: NoAction)',
    );
    expect(plan.edits[1]?.fields).toEqual(['teams2 teams[] @relation("teamsTenantId")']);
  });
});

describe('tenancyEdits under --composite', () => {
  it('a unique (key, id) on the referenced model and each tenant-wide foreign key as a named relation beside the legacy one', () => {
    const plan = tenancyEdits(
      readModels(camelSchema),
      facts({
        uniques: [{ table: 'users', name: 'users_organization_id_id_key', columns: ['organization_id', 'id'] }],
        compositeForeignKeys: [
          {
            table: 'projects',
            name: 'projects_organization_id_owner_id_fkey',
            columns: ['organization_id', 'owner_id'],
            references: 'users',
            referencedColumns: ['organization_id', 'id'],
            onUpdateCascade: true,
          },
        ],
      }),
    );
    const user = plan.edits.find((e) => e.model === 'User');
    const project = plan.edits.find((e) => e.model === 'Project');
    expect(user?.attributes).toEqual(['@@index([organizationId])', '@@unique([organizationId, id])']);
    expect(user?.fields.at(-1)).toBe('projectsInTenant Project[] @relation("ProjectOwnerTenant")');
    expect(project?.fields.at(-1)).toBe(
      'ownerInTenant User @relation("ProjectOwnerTenant", fields: [organizationId, ownerId], references: [organizationId, id], onDelete: NoAction, onUpdate: Cascade)',
    );
  });
});

describe('editSchema and formatTouched', () => {
  it('adds lines inside the models and the new model at the end; the rest byte for byte; only touched models take the formatted layout', () => {
    const plan = tenancyEdits(readModels(camelSchema), facts());
    const edited = editSchema(camelSchema, plan.edits, plan.added);
    expect(edited.startsWith(camelSchema.slice(0, camelSchema.indexOf('model User')))).toBe(true);
    expect(edited).toContain('  fullName String    @map("full_name") // shown in the header\n');
    expect(edited).toContain('  projects Project[]\n  organizationId BigInt @map("organization_id")\n');
    expect(edited).toContain('  @@map("projects")\n  @@index([organizationId])\n}');
    expect(edited.endsWith('  @@map("organizations")\n}\n')).toBe(true);

    // A formatter's output where every model changed: only the touched one is taken.
    const formatted = edited.replace(/ {4}@map/g, ' @map').replace('model Project {', 'model Project  {');
    const result = formatTouched(edited, formatted, ['User']);
    expect(result).toContain('  fullName String @map("full_name") // shown in the header');
    expect(result).toContain('model Project {');
  });
});

describe('prismaMigrationSql', () => {
  it('keeps the net DDL: valid constraints, no proving check, no CONCURRENTLY, no row work, no backfill', () => {
    const sql = prismaMigrationSql(
      [
        {
          unit: 'users_key',
          kind: 'migration',
          statements: [
            'ALTER TABLE public.users ADD COLUMN organization_id bigint',
            'ALTER TABLE public.users ADD CONSTRAINT users_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations (id) NOT VALID',
          ],
        },
        {
          unit: 'index',
          kind: 'migration',
          statements: ['CREATE INDEX CONCURRENTLY IF NOT EXISTS users_organization_id_idx ON public.users (organization_id)'],
        },
        { unit: 'fill', kind: 'backfill', statements: ['UPDATE public.users SET organization_id = 1'] },
        {
          unit: 'check',
          kind: 'migration',
          statements: [
            'ALTER TABLE public.users ADD CONSTRAINT users_organization_id_not_null CHECK (organization_id IS NOT NULL) NOT VALID',
          ],
        },
        {
          unit: 'validate',
          kind: 'migration',
          statements: [
            'ALTER TABLE public.users VALIDATE CONSTRAINT users_organization_id_fkey',
            'ALTER TABLE public.users VALIDATE CONSTRAINT users_organization_id_not_null',
          ],
        },
        {
          unit: 'not_null',
          kind: 'migration',
          statements: [
            "SET LOCAL lock_timeout = '500ms'",
            'ALTER TABLE public.users ALTER COLUMN organization_id SET NOT NULL',
            'ALTER TABLE public.users DROP CONSTRAINT users_organization_id_not_null',
          ],
        },
      ],
      'why',
    );
    const statements = sql
      .split('\n')
      .filter((l) => l && !l.startsWith('--'))
      .join('\n');
    expect(statements).toBe(
      [
        'ALTER TABLE public.users ADD COLUMN organization_id bigint;',
        'ALTER TABLE public.users ADD CONSTRAINT users_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations (id);',
        'CREATE INDEX IF NOT EXISTS users_organization_id_idx ON public.users (organization_id);',
        'ALTER TABLE public.users ALTER COLUMN organization_id SET NOT NULL;',
      ].join('\n'),
    );
    expect(sql).toMatch(/^-- why\n/);
    expect(sql).not.toContain('fill');
  });
});

describe('recordUnit', () => {
  it("records Prisma's checksum (SHA-256 hex of the file's bytes), finished, one step; the rollback deletes exactly that row", () => {
    const text = 'CREATE TABLE t ();\n';
    expect(prismaChecksum(text)).toBe(createHash('sha256').update(Buffer.from(text)).digest('hex'));
    const unit = recordUnit('20260101000000_tenantify_organizations', 'abc');
    expect(unit.sql).toContain(
      "VALUES (gen_random_uuid()::text, 'abc', now(), '20260101000000_tenantify_organizations', NULL, NULL, now(), 1);",
    );
    expect(unit.sql).toContain('-- tenantify:precheck');
    expect(unit.rollback).toContain(
      "DELETE FROM public._prisma_migrations WHERE migration_name = '20260101000000_tenantify_organizations' AND checksum = 'abc';",
    );
  });
});
