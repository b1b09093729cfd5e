/**
 * The service's bearer token, when it runs with `--token`. Taken once from the page URL
 * (`?token=` or `#token=`), kept in localStorage, and removed from the address bar so a copied
 * link never carries it.
 */
const KEY = 'hoptrace.token';

export function takeTokenFromUrl(): string | null {
  const url = new URL(location.href);
  const hash = new URLSearchParams(url.hash.replace(/^#/, ''));
  const token = url.searchParams.get('token') ?? hash.get('token');
  if (token === null) return readToken();
  url.searchParams.delete('token');
  hash.delete('token');
  url.hash = hash.toString();
  history.replaceState(history.state, '', url.toString());
  if (token) localStorage.setItem(KEY, token);
  else localStorage.removeItem(KEY);
  return token || null;
}

export function readToken(): string | null {
  try {
    return localStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function saveToken(token: string | null): void {
  if (token) localStorage.setItem(KEY, token);
  else localStorage.removeItem(KEY);
}
