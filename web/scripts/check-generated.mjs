// Fails when client/src/openapi.ts is not what openapi-typescript makes of docs/openapi.yaml
// now: the client's types come from the spec, never from a hand edit or a stale copy.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'otp-openapi-'));
try {
  const fresh = join(dir, 'openapi.ts');
  execFileSync('npx', ['openapi-typescript', '../docs/openapi.yaml', '-o', fresh], { stdio: 'ignore' });
  if (readFileSync(fresh, 'utf8') !== readFileSync('client/src/openapi.ts', 'utf8')) {
    console.error('client/src/openapi.ts is out of date with docs/openapi.yaml: run `npm --prefix web run gen`');
    process.exit(1);
  }
  console.log('client/src/openapi.ts matches docs/openapi.yaml');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
