/**
 * Passwords never reach a terminal, a log or the ledger. Everything that prints a
 * connection string or an error that may contain one goes through here.
 */

// The password runs to the authority's last @ (an unencoded @ in it is still the password's).
// Any scheme: a mistyped one (postgress://, mysql://) still carries the password.
const urlPassword = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)([^\s/?#]*)(@)/gi;
const keywordPassword = /(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)/gi;
const envPassword = /(\bPGPASSWORD=)(\S+)/g;

export function redact(text: string): string {
  return text
    .replace(urlPassword, (_m, head: string, _pw: string, at: string) => `${head}***${at}`)
    .replace(keywordPassword, (_m, head: string) => `${head}***`)
    .replace(envPassword, (_m, head: string) => `${head}***`);
}

/** A short description of where a URL points, for messages: user@host:port/db. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    const host = u.hostname || decodeURIComponent(u.searchParams.get('host') ?? '') || 'local socket';
    return `${decodeURIComponent(u.username) || 'default user'}@${host}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return redact(url);
  }
}
