// The modal's styles: every rule under `.otp-signin`, every colour and size a custom property
// (`--otp-*`), so a host page themes it without touching its own styles.
export const styles = `
.otp-signin {
  --otp-accent: #1d4ed8;
  --otp-accent-text: #ffffff;
  --otp-background: #ffffff;
  --otp-foreground: #111827;
  --otp-muted: #4b5563;
  --otp-border: #9ca3af;
  --otp-error: #b91c1c;
  --otp-success: #166534;
  --otp-radius: 10px;
  --otp-font: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  box-sizing: border-box;
  width: min(26rem, calc(100vw - 2rem));
  max-height: calc(100vh - 2rem);
  overflow: auto;
  margin: auto;
  padding: 1.5rem;
  border: 1px solid var(--otp-border);
  border-radius: var(--otp-radius);
  background: var(--otp-background);
  color: var(--otp-foreground);
  font: 1rem/1.5 var(--otp-font);
  box-shadow: 0 20px 50px rgba(0, 0, 0, 0.25);
}
.otp-signin[open]:not(:modal) { position: fixed; inset: 0; z-index: 1000; }
.otp-signin::backdrop { background: rgba(17, 24, 39, 0.55); }
.otp-signin *, .otp-signin *::before, .otp-signin *::after { box-sizing: inherit; }
.otp-signin .otp-header { display: flex; align-items: flex-start; justify-content: space-between; gap: 1rem; }
.otp-signin h2 { margin: 0 0 0.25rem; font-size: 1.25rem; line-height: 1.3; }
.otp-signin p { margin: 0 0 1rem; }
.otp-signin .otp-muted { color: var(--otp-muted); font-size: 0.875rem; }
.otp-signin form { display: grid; gap: 0.9rem; }
.otp-signin .otp-field { display: grid; gap: 0.3rem; }
.otp-signin label { font-weight: 600; font-size: 0.9rem; }
.otp-signin .otp-row { display: grid; grid-template-columns: minmax(7rem, 40%) 1fr; gap: 0.5rem; }
.otp-signin input, .otp-signin select {
  width: 100%;
  min-height: 2.75rem;
  padding: 0.5rem 0.65rem;
  border: 1px solid var(--otp-border);
  border-radius: calc(var(--otp-radius) * 0.6);
  background: var(--otp-background);
  color: var(--otp-foreground);
  font: inherit;
}
.otp-signin input[aria-invalid="true"] { border-color: var(--otp-error); }
.otp-signin .otp-code { font-size: 1.5rem; letter-spacing: 0.3em; font-variant-numeric: tabular-nums; }
.otp-signin button {
  min-height: 2.75rem;
  padding: 0.5rem 1rem;
  border: 1px solid transparent;
  border-radius: calc(var(--otp-radius) * 0.6);
  font: inherit;
  font-weight: 600;
  cursor: pointer;
}
.otp-signin button:disabled { cursor: not-allowed; opacity: 0.65; }
.otp-signin .otp-primary { background: var(--otp-accent); color: var(--otp-accent-text); }
.otp-signin .otp-secondary { background: transparent; color: var(--otp-accent); border-color: var(--otp-accent); }
.otp-signin .otp-link { background: none; border: none; padding: 0; min-height: auto; color: var(--otp-accent); text-decoration: underline; font-weight: 400; }
.otp-signin .otp-close { background: none; border: none; min-height: 2.25rem; min-width: 2.25rem; padding: 0; font-size: 1.5rem; line-height: 1; color: var(--otp-muted); }
.otp-signin .otp-actions { display: flex; flex-wrap: wrap; gap: 0.5rem; }
.otp-signin .otp-actions > * { flex: 1 1 auto; }
.otp-signin .otp-error { color: var(--otp-error); font-weight: 600; }
.otp-signin .otp-error:empty, .otp-signin .otp-status:empty { display: none; }
.otp-signin .otp-status { color: var(--otp-success); }
.otp-signin :focus-visible { outline: 3px solid var(--otp-accent); outline-offset: 2px; }
.otp-signin .otp-challenge { min-height: 1rem; }
@media (prefers-reduced-motion: no-preference) {
  .otp-signin[open] { animation: otp-in 120ms ease-out; }
  @keyframes otp-in { from { opacity: 0; transform: translateY(8px); } to { opacity: 1; transform: none; } }
}
`;
