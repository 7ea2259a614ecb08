#!/usr/bin/env bash
# The packages as a React app would get them: `npm pack` @otp-service/client and
# @otp-service/react, install the tarballs into a new Vite app in DIR (outside the
# workspace), type-check it against their declarations and build it.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir="$1"
mkdir -p "$dir/tarballs" "$dir/app/src"
npm --prefix web run -s build:packages
(cd web && npm pack --silent -w @otp-service/client -w @otp-service/react --pack-destination "$dir/tarballs" >/dev/null)
client_tgz="$(find "$dir/tarballs" -name 'otp-service-client-*.tgz')"
react_tgz="$(find "$dir/tarballs" -name 'otp-service-react-*.tgz')"
for tarball in "$client_tgz" "$react_tgz"; do
  listing="$(tar -tzf "$tarball")"
  grep -qx 'package/dist/index.js' <<<"$listing" || { echo "pack test: $tarball has no dist/index.js" >&2; exit 1; }
  grep -qx 'package/dist/index.d.ts' <<<"$listing" || { echo "pack test: $tarball has no dist/index.d.ts" >&2; exit 1; }
  if grep -E '^package/(src|test)/|tsbuildinfo' <<<"$listing"; then
    echo "pack test: $tarball ships sources or build state (above)" >&2
    exit 1
  fi
done

# The same versions as the workspace's lockfile, so the packages meet what they were built with.
version() { node -p "require('./web/node_modules/$1/package.json').version"; }
cat >"$dir/app/package.json" <<JSON
{
  "name": "otp-pack-test-app",
  "private": true,
  "type": "module",
  "dependencies": {
    "@otp-service/client": "file:$client_tgz",
    "@otp-service/react": "file:$react_tgz",
    "react": "$(version react)",
    "react-dom": "$(version react-dom)"
  },
  "devDependencies": {
    "@types/react": "$(version @types/react)",
    "@types/react-dom": "$(version @types/react-dom)",
    "@vitejs/plugin-react": "$(version @vitejs/plugin-react)",
    "typescript": "$(version typescript)",
    "vite": "$(version vite)"
  }
}
JSON
cat >"$dir/app/tsconfig.json" <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022", "lib": ["ES2022", "DOM"], "module": "ESNext", "moduleResolution": "Bundler",
    "jsx": "react-jsx", "strict": true, "noEmit": true, "skipLibCheck": false, "types": []
  },
  "include": ["src"]
}
JSON
cat >"$dir/app/index.html" <<'HTML'
<!doctype html>
<html lang="en"><head><meta charset="utf-8" /><title>pack test</title></head>
<body><div id="root"></div><script type="module" src="/src/main.tsx"></script></body></html>
HTML
cat >"$dir/app/src/main.tsx" <<'TSX'
import { createOtpClient, RateLimitedError, type SendOtpAccepted } from '@otp-service/client';
import { OtpSignIn, type SignedIn } from '@otp-service/react';
import { useState } from 'react';
import { createRoot } from 'react-dom/client';

const client = createOtpClient({ baseUrl: 'https://abc123.execute-api.eu-west-1.amazonaws.com/prod', apiKey: 'key' });
const accepted: SendOtpAccepted | null = null;
console.log(accepted, RateLimitedError.name);

function App() {
  const [signedIn, setSignedIn] = useState<SignedIn | null>(null);
  return (
    <>
      <p>{signedIn?.subject ?? 'signed out'}</p>
      <OtpSignIn client={client} open onClose={() => undefined} onSignedIn={setSignedIn} locale="es" askName />
    </>
  );
}

const root = document.getElementById('root');
if (root) createRoot(root).render(<App />);
TSX
cat >"$dir/app/vite.config.js" <<'JS'
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';
export default defineConfig({ plugins: [react()] });
JS
cd "$dir/app"
npm install --no-audit --no-fund --prefer-offline --loglevel error
npx tsc -p .
npx vite build --logLevel warn
bundle="$(cat dist/assets/*.js)"
for expected in '/api/send-otp' '/api/verify-otp' 'otp-signin' 'Inicia sesión con tu teléfono' 'one-time-code'; do
  grep -qF -- "$expected" <<<"$bundle" || { echo "pack test: the app's bundle lacks '$expected'" >&2; exit 1; }
done
echo "pack test: $(basename "$client_tgz") and $(basename "$react_tgz") installed, type-checked and built into a separate Vite app"
