/**
 * Passwords never reach a terminal, a log or the ledger. Everything that prints a
 * connection string or an error that may contain one goes through here.
 *
 * Two nets. By shape: in anything that looks like a URL, what sits between `://` and the
 * last `@` of the word is the user information, and its password is never shown, even
 * when the URL does not parse (an unencoded `#`, `/` or `?` in a password ends the
 * authority for every URL parser, so no parser can be asked where the password ends).
 * By value: the passwords this process was given (-d, DATABASE_URL, PGPASSWORD) are
 * remembered and masked wherever they appear, whatever text carries them (a TypeScript
 * unit's error, a server message, a stack).
 */

/** A scheme, `://`, then the word up to its last `@`: the user information. */
const urlUserinfo = /\b([a-z][a-z0-9+.-]*:\/\/)(\S*)@/gi;
const keywordPassword = /(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)/gi;
const envPassword = /(\bPGPASSWORD=)(\S+)/g;

/** Shorter values are not looked for in free text: masking every "ab" would garble the output and hide nothing. */
const shortestRemembered = 4;
const remembered = new Set<string>();

/** A user name alone shows; from the first `:` on is the password; anything else is not shown at all. */
function maskUserinfo(userinfo: string): string {
  if (/^[^:/?#@\s]*$/.test(userinfo)) return userinfo;
  const user = /^([^:/?#@\s]*):/.exec(userinfo);
  return user ? `${user[1]}:***` : '***';
}

export function redact(text: string): string {
  let result = text
    .replace(urlUserinfo, (_m, scheme: string, userinfo: string) => `${scheme}${maskUserinfo(userinfo)}@`)
    .replace(keywordPassword, (_m, head: string) => `${head}***`)
    .replace(envPassword, (_m, head: string) => `${head}***`);
  for (const secret of remembered) if (result.includes(secret)) result = result.split(secret).join('***');
  return result;
}

/** A password to mask wherever it appears from now on (and its forms as written in a URL and in JSON). */
export function rememberSecret(value: string | undefined): void {
  if (!value || value.length < shortestRemembered) return;
  // Longest first, so that a secret holding another is masked whole.
  const forms = [value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value)];
  const all = [...remembered, ...forms].sort((a, b) => b.length - a.length);
  remembered.clear();
  for (const form of all) remembered.add(form);
}

/**
 * The secrets a database URL carries, read before it is parsed (it may not parse): its
 * user information past the user name, raw and percent-decoded, and its `password=`
 * query parameter.
 */
export function rememberUrlSecrets(url: string | undefined): void {
  if (!url) return;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url);
  const rest = scheme ? url.slice(scheme[0].length) : url;
  const at = rest.lastIndexOf('@');
  if (at !== -1) {
    const userinfo = rest.slice(0, at);
    const colon = userinfo.indexOf(':');
    const password = colon === -1 ? undefined : userinfo.slice(colon + 1);
    rememberSecret(password);
    rememberSecret(tryDecode(password));
    // A user information that is not `user:password` is shown nowhere: all of it is secret.
    if (!/^[^:/?#@\s]*(:|$)/.test(userinfo)) rememberSecret(userinfo);
  }
  for (const match of url.matchAll(/[?&]password=([^&#]*)/gi)) {
    rememberSecret(match[1]);
    rememberSecret(tryDecode(match[1]));
  }
}

/** The passwords this process was given: -d / DATABASE_URL (raw, before any parsing) and PGPASSWORD. */
export function rememberGivenSecrets(url: string | undefined, env: NodeJS.ProcessEnv = process.env): void {
  rememberUrlSecrets(url);
  rememberUrlSecrets(env['DATABASE_URL']);
  rememberSecret(env['PGPASSWORD']);
}

function tryDecode(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}
