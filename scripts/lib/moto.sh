# shellcheck shell=bash
# moto's server (a local AWS SSM) for the tests. Source this file, then:
#   moto_start    # creates .venv-tools/moto if needed, starts moto on a free 127.0.0.1 port,
#                 # exports OTP_TEST_SSM_ENDPOINT, and stops it again when the shell exits
#   moto_stop     # stops it now (the EXIT trap calls it too)
# moto runs in its own process group (setsid), so stopping it stops its children as well.

# A venv of its own, inside the deploy tools' one (scripts/tools-env): moto and those tools
# both pull in boto3/botocore, and one set of pins must not break the other. Same places
# as tools-env, so CI caches both together.
if [ -z "${MOTO_VENV:-}" ]; then
  if [ -n "${OTP_TOOLS_VENV:-}" ]; then
    MOTO_VENV="$OTP_TOOLS_VENV/moto"
  elif [ -n "${CI:-}" ]; then
    MOTO_VENV=/var/tmp/otp-service-venv-tools/moto
  else
    MOTO_VENV=.venv-tools/moto
  fi
fi
moto_pid=""
moto_log=""

# Pinned, like the deploy tools, so a new moto release cannot turn CI red overnight.
MOTO_PACKAGE='moto[server]==5.2.5'

moto_install() {
  if [ ! -x "$MOTO_VENV/bin/moto_server" ] || [ "$(cat "$MOTO_VENV/.installed" 2>/dev/null)" != "$MOTO_PACKAGE" ]; then
    echo "moto: installing $MOTO_PACKAGE into $MOTO_VENV (about a minute, once)"
    python3 -m venv "$MOTO_VENV"
    "$MOTO_VENV/bin/pip" install --quiet --disable-pip-version-check "$MOTO_PACKAGE"
    echo "$MOTO_PACKAGE" >"$MOTO_VENV/.installed"
  fi
}

moto_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

moto_stop() {
  if [ -n "$moto_pid" ]; then
    kill -- -"$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
    moto_pid=""
  fi
  if [ -n "$moto_log" ]; then
    rm -f "$moto_log"
    moto_log=""
  fi
}

moto_start() {
  moto_install
  local port
  port="$(moto_free_port)"
  moto_log="$(mktemp)"
  setsid "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$moto_log" 2>&1 &
  moto_pid=$!
  # Stop moto whatever happens next, failures included. Chains a trap set before.
  local previous
  previous="$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")"
  # shellcheck disable=SC2064 # expand $previous now, on purpose
  trap "moto_stop; ${previous:-:}" EXIT
  for _ in $(seq 1 100); do
    if curl -fs -o /dev/null "http://127.0.0.1:$port/moto-api/"; then
      export OTP_TEST_SSM_ENDPOINT="http://127.0.0.1:$port"
      echo "moto: SSM on $OTP_TEST_SSM_ENDPOINT"
      return 0
    fi
    if ! kill -0 "$moto_pid" 2>/dev/null; then
      cat "$moto_log" >&2
      echo "moto: moto_server exited" >&2
      moto_pid=""
      return 1
    fi
    sleep 0.2
  done
  cat "$moto_log" >&2
  echo "moto: not ready after 20 s" >&2
  return 1
}
