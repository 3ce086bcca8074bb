/**
 * Item path globs (`grants.required`, a grant's `items`): `**` matches any run of path segments,
 * `*` any run of characters inside one segment, everything else itself. Pure; compiled once.
 */

export type ItemMatcher = (item: string) => boolean;

export function compileGlob(glob: string): ItemMatcher {
  if (glob === '**' || glob === '/**') return () => true;
  let re = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*' && glob[i + 1] === '*') {
      // `/**` at a segment boundary matches the folder's whole subtree.
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else re += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  const compiled = new RegExp(`${re}$`);
  return (item) => compiled.test(item);
}

/** True when any of the globs matches. */
export function compileGlobs(globs: readonly string[]): ItemMatcher {
  const matchers = globs.map(compileGlob);
  return (item) => matchers.some((m) => m(item));
}
