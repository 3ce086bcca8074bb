/**
 * The waiting page's style sheet and icon, served as `/_rushgate/waiting.css` and
 * `/_rushgate/icon.svg`. One column that reads on a phone, system fonts (no CDN, nothing to
 * fetch), a light and a dark scheme, and no motion for those who ask for reduced motion.
 */
export const WAITING_STYLE = `:root {
  color-scheme: light dark;
  --bg: #f6f7f9;
  --card: #ffffff;
  --text: #1d2330;
  --muted: #5a6478;
  --accent: #1f6feb;
  --ok: #1a7f37;
  --bad: #b42318;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  line-height: 1.5;
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #0f1319; --card: #171c24; --text: #e7ebf2; --muted: #a3adbf; --accent: #6ea8fe; --ok: #4ac26b; --bad: #ff7b72; }
}
* { box-sizing: border-box; }
html, body { margin: 0; padding: 0; background: var(--bg); color: var(--text); }
body { min-height: 100vh; display: flex; align-items: flex-start; justify-content: center; padding: 1rem; }
main { width: 100%; max-width: 32rem; margin-top: 8vh; background: var(--card); border-radius: 1rem;
  padding: 1.5rem 1.25rem; box-shadow: 0 1px 3px rgba(0,0,0,.12), 0 8px 24px rgba(0,0,0,.06); }
h1 { font-size: 1.35rem; margin: 0 0 .25rem; }
.item { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; word-break: break-all; color: var(--muted); margin: 0 0 1.25rem; }
.figures { display: grid; grid-template-columns: repeat(3, 1fr); gap: .75rem; margin: 0 0 1.25rem; }
.figure { background: var(--bg); border-radius: .75rem; padding: .75rem .5rem; text-align: center; }
.figure dt { font-size: .8rem; color: var(--muted); }
.figure dd { margin: .15rem 0 0; font-size: 1.5rem; font-weight: 650; font-variant-numeric: tabular-nums; }
#rg-status { margin: 0 0 1rem; }
.hint { font-size: .9rem; color: var(--muted); }
button, .button { font: inherit; border: 0; border-radius: .6rem; padding: .6rem 1rem; background: var(--accent); color: #fff;
  cursor: pointer; text-decoration: none; display: inline-block; }
button:focus-visible, a:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
a { color: var(--accent); }
.visually-hidden { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
[hidden] { display: none !important; }
.js #rg-retry { display: none; }
.js .failed #rg-retry, .js main.failed #rg-retry { display: inline-block; }
main.admitted h1 { color: var(--ok); }
main.failed h1 { color: var(--bad); }
main.admitted .figures, main.failed .figures { display: none; }
.js .nojs { display: none; }
@media (max-width: 22rem) {
  .figures { grid-template-columns: 1fr; }
}
@media (prefers-reduced-motion: no-preference) {
  main.admitted h1 { transition: color .3s; }
}
`;

export const WAITING_ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" role="img" aria-label="rushgate">
<rect width="64" height="64" rx="14" fill="#1f6feb"/>
<path d="M32 14v26m0 0-10-10m10 10 10-10M18 48h28" fill="none" stroke="#fff" stroke-width="6" stroke-linecap="round" stroke-linejoin="round"/>
</svg>
`;
