# shellcheck shell=bash
# The demo sign-in page (web/demo) that the local run serves at `/`. Source this file, then:
#   demo_build_if_needed   # with npm: installs web/'s packages and builds web/demo/dist when
#                          # it is missing or older than its sources; without npm: says how
#                          # to get the page. Never fails: the API is served either way.

_demo_is_stale() {
  local stamp=web/demo/dist/index.html
  [ -f "$stamp" ] || return 0
  [ -n "$(find docs/openapi.yaml web/package.json web/package-lock.json web/tsconfig.base.json \
    web/client/src web/client/package.json web/react/src web/react/package.json \
    web/demo/src web/demo/index.html web/demo/vite.config.ts web/demo/package.json \
    -newer "$stamp" -print -quit 2>/dev/null)" ]
}

demo_build_if_needed() {
  if ! _demo_is_stale; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "demo page: npm not found, so / has no sign-in page (the API is served as usual)." >&2
    echo "demo page: install Node.js 20.19+ with npm and start scripts/dev again to get it." >&2
    return 0
  fi
  echo "demo page: building web/demo (npm ci, then vite build; once per change)" >&2
  local log
  log="$(mktemp -t otp-demo-build.XXXXXX.log)"
  if { [ -f web/node_modules/.package-lock.json ] && [ web/node_modules/.package-lock.json -nt web/package-lock.json ] ||
    npm --prefix web ci --no-audit --no-fund; } >"$log" 2>&1 &&
    npm --prefix web run build:local >>"$log" 2>&1; then
    rm -f "$log"
  else
    cat "$log" >&2
    echo "demo page: the build failed (above); the API is served as usual, / is not." >&2
    rm -f "$log"
  fi
}
