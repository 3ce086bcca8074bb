/**
 * The request URL as content servers log it: the ticket cut out (`/t/<ticket>/item` becomes
 * `/t/…/item`) and the query dropped. A ticket in a log is a download anyone who reads the log can
 * use until it expires, so no log line carries one.
 */
export function loggableUrl(url: string | undefined): string {
  const path = (url ?? '/').split('?')[0] ?? '/';
  return path.replace(/^\/t\/[^/]*/, '/t/…');
}
