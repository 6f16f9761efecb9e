/**
 * One resolution of where to connect, shared by tenantify's own connection and the
 * PostgreSQL tools it runs (pg_dump, pg_restore, psql): each parameter from the URL, else
 * from the libpq variable of the same name (PGPASSWORD...), as node-pg does for its own
 * connection. What libpq finds by itself (~/.pgpass, a service file) keeps reaching the
 * tools through PGPASSFILE, PGSERVICEFILE and PGSERVICE.
 */
import { UsageError } from '../errors.js';
import { redact } from './redact.js';

/** URL query parameters and the libpq variables they stand for. */
const queryVariables: Record<string, string> = {
  host: 'PGHOST',
  hostaddr: 'PGHOSTADDR',
  port: 'PGPORT',
  user: 'PGUSER',
  password: 'PGPASSWORD',
  dbname: 'PGDATABASE',
  sslmode: 'PGSSLMODE',
  sslrootcert: 'PGSSLROOTCERT',
  sslcert: 'PGSSLCERT',
  sslkey: 'PGSSLKEY',
  sslcrl: 'PGSSLCRL',
  options: 'PGOPTIONS',
  connect_timeout: 'PGCONNECT_TIMEOUT',
  target_session_attrs: 'PGTARGETSESSIONATTRS',
  application_name: 'PGAPPNAME',
};

/** libpq's SSL modes (and node-pg's no-verify). */
const sslModes = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'];

/** The parts of a database URL a tool needs, decoded. Undefined: the URL does not say. */
export interface UrlParts {
  host?: string;
  port?: string;
  user?: string;
  password?: string;
  database?: string;
  /** Query parameters, by libpq variable name (PGSSLMODE...). */
  variables: Record<string, string>;
}

/**
 * Parses a -d / DATABASE_URL value, or says which part of it is wrong (exit 2; the
 * password is never in the message).
 */
export function parseDatabaseUrl(url: string): UrlParts {
  // Without a scheme, nothing says where a password would be: the value is not shown.
  const shown = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? `${redact(url)} ` : '';
  const wrong = (part: string, hint = 'the form is postgres://user:password@host:port/database?sslmode=require'): UsageError =>
    new UsageError(`the database URL ${shown}is not valid: ${part}`, { code: 'url-invalid', hint });
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url);
  if (!scheme) throw wrong('it does not start with postgres:// or postgresql://');
  if (!/^postgres(ql)?$/i.test(scheme[1] ?? '')) throw wrong(`the scheme is "${scheme[1]}:", not postgres: or postgresql:`);
  // The user information runs to the URL's last @: a password may hold an unencoded @, and
  // what comes before that @ is never shown, even when it is wrong.
  const rest = url.slice(scheme[0].length);
  const at = rest.lastIndexOf('@');
  const userinfo = at === -1 ? undefined : rest.slice(0, at);
  if (userinfo !== undefined && /[/?#\s]/.test(userinfo)) {
    throw wrong(
      'the part before its last @ (the user name and password) holds a /, ?, # or a space unencoded',
      'percent-encode them in the user name and password (/ as %2F, ? as %3F, # as %23, a space as %20), and an @ after the host as %40',
    );
  }
  const afterUserinfo = rest.slice(at + 1);
  const authorityEnd = afterUserinfo.search(/[/?#]/);
  const hostport = authorityEnd === -1 ? afterUserinfo : afterUserinfo.slice(0, authorityEnd);
  const hostMatch = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(hostport);
  const rawHost = hostMatch?.[1] ?? '';
  const rawPort = hostMatch?.[2];
  if (rawPort !== undefined && rawPort !== '') {
    const port = Number(rawPort);
    if (!/^\d+$/.test(rawPort) || port < 1 || port > 65535) throw wrong(`the port "${rawPort}" is not a number from 1 to 65535`);
  }
  const decode = (text: string, part: string): string => {
    try {
      return decodeURIComponent(text);
    } catch {
      throw wrong(
        `the ${part} is not valid percent-encoding`,
        'write a character that is special in URLs (@ : / ? # %) as %XX, for example @ as %40',
      );
    }
  };
  let user: string | undefined;
  let password: string | undefined;
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    user = decode(colon === -1 ? userinfo : userinfo.slice(0, colon), 'user name');
    if (colon !== -1) password = decode(userinfo.slice(colon + 1), 'password');
  }
  let parsed: URL;
  try {
    parsed = new URL(`postgres://${rawHost ? rawHost : 'localhost'}${authorityEnd === -1 ? '' : afterUserinfo.slice(authorityEnd)}`);
  } catch {
    throw wrong(rawHost ? `the host "${rawHost}" is not a valid host name` : 'its path or query does not parse');
  }
  const variables: Record<string, string> = {};
  for (const [key, value] of parsed.searchParams) {
    // Others (node-pg's own ssl=true...) mean nothing to libpq's tools.
    const variable = queryVariables[key];
    if (variable) variables[variable] = value;
  }
  const sslmode = variables['PGSSLMODE'];
  if (sslmode !== undefined && !sslModes.includes(sslmode)) {
    throw wrong(
      `sslmode "${sslmode}" is not one of ${sslModes.join(', ')}`,
      'see https://www.postgresql.org/docs/current/libpq-ssl.html for what each mode checks',
    );
  }
  const database = decode(parsed.pathname.replace(/^\//, ''), 'database name');
  return {
    ...(rawHost ? { host: decode(rawHost.replace(/^\[|\]$/g, ''), 'host') } : {}),
    ...(rawPort ? { port: rawPort } : {}),
    ...(user ? { user } : {}),
    ...(password !== undefined && password !== '' ? { password } : {}),
    ...(database ? { database } : {}),
    variables,
  };
}

/** The libpq variables that say where to connect and as whom: the URL's parts replace them one by one. */
const connectionVariables = ['PGHOST', 'PGHOSTADDR', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE', ...Object.values(queryVariables)];

/**
 * The environment for pg_dump, pg_restore and psql that connects them where tenantify
 * connects: each parameter from the URL, else from the caller's libpq variable (so a
 * password in PGPASSWORD reaches them when the URL has none), else what libpq finds in
 * PGPASSFILE (~/.pgpass) and, when no URL names the server, the service file.
 */
export function toolEnvironment(url: string | undefined, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const result: NodeJS.ProcessEnv = { ...env };
  if (!url) return result;
  const parts = parseDatabaseUrl(url);
  const fromUrl: Record<string, string | undefined> = {
    PGHOST: parts.host,
    PGPORT: parts.port,
    PGUSER: parts.user,
    PGPASSWORD: parts.password,
    PGDATABASE: parts.database,
    ...parts.variables,
  };
  for (const name of new Set(connectionVariables)) {
    const value = fromUrl[name] ?? (env[name] || undefined);
    if (value === undefined) delete result[name];
    else result[name] = value;
  }
  // A host in the URL is where to go: a PGHOSTADDR of the caller's would send the tools elsewhere.
  if (parts.host && !parts.variables['PGHOSTADDR']) delete result['PGHOSTADDR'];
  // A service's entries would take precedence over the variables above (libpq reads the
  // service before the environment), and node-pg never reads it: with a URL, the URL says where.
  delete result['PGSERVICE'];
  return result;
}

/**
 * A short description of where a URL points, for messages: user@host:port/db, decoded,
 * from the URL's parts or its query parameters (a socket URL names its host and user
 * there); never the password.
 */
export function describeUrl(url: string): string {
  let parts: UrlParts;
  try {
    parts = parseDatabaseUrl(url);
  } catch {
    return redact(url);
  }
  const { variables } = parts;
  const user = parts.user ?? variables['PGUSER'] ?? 'default user';
  const host = parts.host ?? variables['PGHOST'] ?? variables['PGHOSTADDR'] ?? 'local socket';
  const port = parts.port ?? variables['PGPORT'];
  const database = parts.database ?? variables['PGDATABASE'] ?? '';
  return `${user}@${host}${port ? `:${port}` : ''}/${database}`;
}
