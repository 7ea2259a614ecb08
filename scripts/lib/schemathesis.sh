# shellcheck shell=bash
# schemathesis (property-based tests of a live API from its OpenAPI spec) for scripts/test-web.
# Source this file, then:
#   schemathesis_install     # a venv of its own under the tools venv, pinned (like moto)
#   schemathesis_run URL     # docs/openapi.yaml against the API at URL

if [ -z "${SCHEMATHESIS_VENV:-}" ]; then
  if [ -n "${OTP_TOOLS_VENV:-}" ]; then
    SCHEMATHESIS_VENV="$OTP_TOOLS_VENV/schemathesis"
  elif [ -n "${CI:-}" ]; then
    SCHEMATHESIS_VENV=/var/tmp/otp-service-venv-tools/schemathesis
  else
    SCHEMATHESIS_VENV=.venv-tools/schemathesis
  fi
fi
# Pinned, like the other test tools, so a new release cannot turn CI red overnight.
SCHEMATHESIS_PACKAGE='schemathesis==4.32.5'
# In the same venv: the JWT library of scripts/lib/check_token_pyjwt.py (a Python backend's
# check), and Twilio's helper library, the oracle of scripts/lib/twilio_signature_vectors.py.
PYJWT_PACKAGE='PyJWT[crypto]==2.15.1 twilio==9.13.0'

schemathesis_install() {
  if [ ! -x "$SCHEMATHESIS_VENV/bin/st" ] || [ "$(cat "$SCHEMATHESIS_VENV/.installed" 2>/dev/null)" != "$SCHEMATHESIS_PACKAGE $PYJWT_PACKAGE" ]; then
    echo "schemathesis: installing $SCHEMATHESIS_PACKAGE and $PYJWT_PACKAGE into $SCHEMATHESIS_VENV (once)"
    python3 -m venv "$SCHEMATHESIS_VENV"
    # shellcheck disable=SC2086 # PYJWT_PACKAGE is a list of packages
    "$SCHEMATHESIS_VENV/bin/pip" install --quiet --disable-pip-version-check "$SCHEMATHESIS_PACKAGE" $PYJWT_PACKAGE
    echo "$SCHEMATHESIS_PACKAGE $PYJWT_PACKAGE" >"$SCHEMATHESIS_VENV/.installed"
  fi
}

# The checks are the contract's promise: no 5xx, and every answer (status, content type,
# body, headers) one that the spec lists; methods the spec does not list answer 405.
SCHEMATHESIS_CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,unsupported_method

schemathesis_run() {
  local url="$1" checks="$SCHEMATHESIS_CHECKS"
  # Run from a scratch folder: schemathesis keeps its example database in the working one.
  local spec="$PWD/docs/openapi.yaml" venv scratch rc=0
  venv="$(cd "$SCHEMATHESIS_VENV" && pwd)"
  scratch="$(mktemp -d -t otp-schemathesis.XXXXXX)"
  (cd "$scratch" && "$venv/bin/st" run "$spec" \
    --url "$url" \
    --checks "$checks" \
    --phases examples,coverage,fuzzing \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-200}" \
    --seed "${SCHEMATHESIS_SEED:-20261201}" \
    --workers 2 \
    --request-timeout 10 \
    --no-color) || rc=$?
  rm -rf "$scratch"
  return "$rc"
}
