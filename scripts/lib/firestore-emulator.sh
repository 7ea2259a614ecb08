# shellcheck shell=bash
# The Firestore emulator for tests, the local run and the benchmark. Source this file, then:
#   firestore_emulator_start   # free 127.0.0.1 port, waits until it answers, exports FIRESTORE_EMULATOR_HOST,
#                              # and stops it on exit (EXIT trap), also on failure
#   firestore_emulator_stop    # stops the whole process group (the launcher script leaves its Java child otherwise)
# A caller with an EXIT trap of its own calls firestore_emulator_stop from it.

FIRESTORE_EMULATOR_PID=""
FIRESTORE_EMULATOR_LOG=""

# The package's own launcher starts in ~2 s; `gcloud emulators firestore start` wraps the same
# emulator and takes ~8 s.
_firestore_emulator_command() {
  local launcher
  for launcher in \
    "$(dpkg -L google-cloud-cli-firestore-emulator 2>/dev/null | grep 'cloud_firestore_emulator$' | head -n1)" \
    /usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator; do
    if [ -n "$launcher" ] && [ -x "$launcher" ]; then
      echo "$launcher start --host=127.0.0.1 --port=$1"
      return 0
    fi
  done
  if command -v gcloud >/dev/null 2>&1; then
    echo "gcloud emulators firestore start --host-port=127.0.0.1:$1"
    return 0
  fi
  echo "the Firestore emulator is not installed (Debian: google-cloud-cli-firestore-emulator)" >&2
  return 1
}

_firestore_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

firestore_emulator_start() {
  local port command
  port="$(_firestore_free_port)"
  command="$(_firestore_emulator_command "$port")" || return 1
  FIRESTORE_EMULATOR_LOG="$(mktemp -t firestore-emulator.XXXXXX.log)"
  # Its own session and process group, so that stopping it reaches the Java child too. The
  # group's id is read from inside, since setsid forks when started from an interactive shell.
  local pidfile
  pidfile="$(mktemp -t firestore-emulator.XXXXXX.pid)"
  # shellcheck disable=SC2016,SC2086
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" $command >"$FIRESTORE_EMULATOR_LOG" 2>&1 </dev/null &
  trap firestore_emulator_stop EXIT
  local waited=0
  until [ -s "$pidfile" ] || [ "$waited" -ge 50 ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  FIRESTORE_EMULATOR_PID="$(cat "$pidfile")"
  rm -f "$pidfile"
  waited=0
  until curl -fs "http://127.0.0.1:$port/" >/dev/null 2>&1; do
    if ! kill -0 -- "-${FIRESTORE_EMULATOR_PID:-0}" 2>/dev/null || [ "$waited" -ge 600 ]; then
      echo "firestore emulator: did not start on 127.0.0.1:$port; its log:" >&2
      cat "$FIRESTORE_EMULATOR_LOG" >&2
      firestore_emulator_stop
      return 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  export FIRESTORE_EMULATOR_HOST="127.0.0.1:$port"
  echo "firestore emulator: listening on $FIRESTORE_EMULATOR_HOST (process group $FIRESTORE_EMULATOR_PID)"
}

firestore_emulator_stop() {
  if [ -n "$FIRESTORE_EMULATOR_PID" ]; then
    kill -TERM -- "-$FIRESTORE_EMULATOR_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 50); do
      kill -0 -- "-$FIRESTORE_EMULATOR_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$FIRESTORE_EMULATOR_PID" 2>/dev/null || true
    FIRESTORE_EMULATOR_PID=""
  fi
  if [ -n "$FIRESTORE_EMULATOR_LOG" ]; then
    rm -f "$FIRESTORE_EMULATOR_LOG"
    FIRESTORE_EMULATOR_LOG=""
  fi
}
