"""Offline checks of template.yaml against the HTTP contract (API.md) and the README.

Run by scripts/lint-deploy with the tools venv's python (it needs samtranslator). It reads
the template as SAM transforms it, the way CloudFormation receives it, and checks:
- every answer API Gateway or WAF gives itself: the contract's JSON shape, a code of the
  contract's error table with its status, every header of API.md "Headers", and
  Retry-After where the contract asks for one;
- the routes: POST, OPTIONS (keyless) and every other method on both paths reach the
  functions;
- the defaults: no daily quota on the usage plan, WAF on with a per-IP rate rule over
  every path;
- every setting of the README's tables (which must agree with API.md) reaches both
  functions, with the table's default;
- the alarms watch metrics that the metric filters produce.

API.md lives beside the repository (../shared/API.md, or $OTP_API_MD). Where it is absent
(a CI clone), the contract's error table and headers below stand in for it, and the run says
so; where it is present, they must equal it.
"""

import json
import logging
import os
import re
import sys
from pathlib import Path

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
# The translator logs notes about its feature toggles that say nothing about the template.
logging.getLogger("samtranslator").setLevel(logging.ERROR)

# API.md, "Errors": status of every error code.
CONTRACT_ERRORS = {
    "invalid_request": 400,
    "invalid_phone": 400,
    "invalid_code_format": 400,
    "captcha_required": 400,
    "captcha_failed": 403,
    "forbidden": 403,
    "not_found": 404,
    "incorrect_code": 401,
    "country_not_allowed": 403,
    "method_not_allowed": 405,
    "code_expired": 410,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "phone_unreachable": 422,
    "rate_limited": 429,
    "too_many_attempts": 429,
    "sms_failed": 502,
    "service_unavailable": 503,
    "internal_error": 500,
}
# API.md, "Headers": on every answer. Access-Control-Allow-Origin is checked apart (it names
# the first configured origin), and Expose-Headers lets a browser read Retry-After.
CONTRACT_HEADERS = {
    "Vary": "Origin",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Access-Control-Expose-Headers": "Retry-After",
}
# The codes whose answers carry a Retry-After header (API.md, "extra fields").
RETRY_AFTER_CODES = {"rate_limited", "service_unavailable"}
# Gateway responses this API can meet; each must be customised, not left to API Gateway's
# {"message": ...} default.
REQUIRED_GATEWAY_RESPONSES = {
    "DEFAULT_4XX",
    "DEFAULT_5XX",
    "INVALID_API_KEY",
    "MISSING_AUTHENTICATION_TOKEN",
    "RESOURCE_NOT_FOUND",
    "THROTTLED",
    "QUOTA_EXCEEDED",
    "WAF_FILTERED",
    "REQUEST_TOO_LARGE",
    "INTEGRATION_FAILURE",
    "INTEGRATION_TIMEOUT",
}
PATHS = ("/api/send-otp", "/api/verify-otp")
FIRST_ORIGIN = {"Fn::Select": [0, {"Fn::Split": [",", {"Ref": "AllowedOrigins"}]}]}

failures = []


def fail(message):
    failures.append(message)


# --- the contract -----------------------------------------------------------------------------
def markdown_section(text, heading):
    """The text under a `#`-heading, up to the next heading of any level."""
    match = re.search(rf"^#+ {re.escape(heading)}\s*$(.*?)(?=^#+ |\Z)", text, re.M | re.S)
    if not match:
        raise SystemExit(f"no section '{heading}'")
    return match.group(1)


def table_rows(section):
    rows = []
    for line in section.splitlines():
        if line.startswith("|") and not re.match(r"^\|[\s|:-]+\|$", line):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows[1:]  # without the header row


def normalise_default(value):
    value = value.strip()
    if value in ("empty", "unset") or value.startswith("the provider"):
        return ""
    quoted = re.fullmatch(r"`([^`]*)`", value)
    if quoted:
        return quoted.group(1)
    number = re.search(r"\d+", value)  # "20", "0 (off)", "off (0)"
    if number:
        return number.group(0)
    return value


def settings_table(section):
    """{variable: default} from a settings table (`A` / `B` with "X per Y" defaults)."""
    settings = {}
    for row in table_rows(section):
        variables = re.findall(r"`([A-Z][A-Z0-9_]+)`", row[1])
        defaults = row[2].split(" per ") if len(variables) == 2 else [row[2]]
        if not variables or len(defaults) != len(variables):
            raise SystemExit(f"cannot read the settings row {row}")
        for variable, default in zip(variables, defaults):
            settings[variable] = normalise_default(default)
    return settings


def read_contract():
    api_md = Path(os.environ.get("OTP_API_MD", ROOT.parent / "shared" / "API.md"))
    if not api_md.is_file():
        print(
            f"NOTE: {api_md} not found: checking against the contract's table copied in "
            f"{Path(__file__).relative_to(ROOT)} (set OTP_API_MD to check it against API.md)"
        )
        return None
    text = api_md.read_text()
    errors = {}
    for row in table_rows(markdown_section(text, "Errors")):
        errors[row[1].strip("`")] = int(row[0])
    if errors != CONTRACT_ERRORS:
        fail(f"the error table here differs from {api_md}: {sorted(set(errors.items()) ^ set(CONTRACT_ERRORS.items()))}")
    headers = dict(re.findall(r"`([A-Za-z-]+): ([^`]+)`", markdown_section(text, "Headers")))
    for name, value in headers.items():
        if CONTRACT_HEADERS.get(name) != value:
            fail(f"{api_md} asks for header {name}: {value}; the check here has {CONTRACT_HEADERS.get(name)}")
    settings = settings_table(markdown_section(text, "Settings (all configurable by environment variable)"))
    settings |= settings_table(markdown_section(text, "Abuse limits"))
    print(f"contract read from {api_md}: {len(errors)} error codes, {len(headers)} headers, {len(settings)} settings")
    return settings


# --- the template ---------------------------------------------------------------------------
class NoManagedPolicies:
    """The template names no managed policy, so the translator needs no IAM lookup."""

    def load(self):
        return {}


def translated_template():
    text = (ROOT / "template.yaml").read_text()
    source = yaml_parse(text)
    fragment = yaml_parse(text)
    # `sam build` puts the code in S3 before the transform sees it; any S3 URI will do here.
    fragment["Globals"]["Function"]["CodeUri"] = "s3://bucket/code.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return source, transform(fragment, {}, NoManagedPolicies())


def evaluate(value, parameters, conditions):
    """Resolves Ref, Fn::If, Fn::Equals, Fn::Not with the parameters' defaults."""
    if isinstance(value, dict) and len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref" and arg in parameters:
            return parameters[arg]
        if key == "Fn::Equals":
            a, b = (evaluate(v, parameters, conditions) for v in arg)
            return str(a) == str(b)
        if key == "Fn::Not":
            return not evaluate(arg[0], parameters, conditions)
        if key == "Condition":
            return condition(arg, parameters, conditions)
        if key == "Fn::If":
            name, then, otherwise = arg
            return evaluate(then if condition(name, parameters, conditions) else otherwise, parameters, conditions)
    if isinstance(value, dict):
        return {k: evaluate(v, parameters, conditions) for k, v in value.items()}
    if isinstance(value, list):
        return [evaluate(v, parameters, conditions) for v in value]
    return value


def condition(name, parameters, conditions):
    return evaluate(conditions[name], parameters, conditions)


def static_header(value):
    """A gateway response's static header value: quoted, as API Gateway wants it."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    return None


def check_answer(where, status, body, headers, origin_ok):
    try:
        error = json.loads(body)["error"]
        code, message = error["code"], error["message"]
    except (ValueError, KeyError, TypeError) as e:
        fail(f"{where}: the body is not the contract's {{\"error\": {{code, message}}}}: {body!r} ({e})")
        return
    if not isinstance(message, str) or not message:
        fail(f"{where}: an empty message")
    extra = set(error) - {"code", "message"} - ({"retryAfterSeconds"} if code == "rate_limited" else set())
    if extra:
        fail(f"{where}: fields the contract does not give {code}: {sorted(extra)}")
    if code not in CONTRACT_ERRORS:
        fail(f"{where}: {code} is no error code of the contract")
    elif CONTRACT_ERRORS[code] != status:
        fail(f"{where}: {code} is {CONTRACT_ERRORS[code]} in the contract, here {status}")
    if not origin_ok:
        fail(f"{where}: Access-Control-Allow-Origin does not name the first of AllowedOrigins")
    for name, value in CONTRACT_HEADERS.items():
        if headers.get(name) != value:
            fail(f"{where}: header {name} is {headers.get(name)!r}, the contract says {value!r}")
    retry_after = headers.get("Retry-After")
    if code in RETRY_AFTER_CODES:
        if not (retry_after or "").isdigit() or int(retry_after) < 1:
            fail(f"{where}: {code} needs a Retry-After header of whole seconds, has {retry_after!r}")
        elif code == "rate_limited" and error.get("retryAfterSeconds") != int(retry_after):
            fail(f"{where}: retryAfterSeconds {error.get('retryAfterSeconds')} differs from Retry-After {retry_after}")
    elif retry_after is not None:
        fail(f"{where}: {code} carries a Retry-After the contract does not give it")
    return code


def check_gateway_responses(api_body):
    responses = api_body.get("x-amazon-apigateway-gateway-responses", {})
    missing = REQUIRED_GATEWAY_RESPONSES - set(responses)
    if missing:
        fail(f"gateway responses left to API Gateway's default: {sorted(missing)}")
    for kind, response in sorted(responses.items()):
        where = f"gateway response {kind}"
        parameters = response.get("responseParameters", {})
        headers, origin_ok = {}, False
        for key, value in parameters.items():
            name = key.removeprefix("gatewayresponse.header.")
            if name == "Access-Control-Allow-Origin":
                origin_ok = value == {"Fn::Sub": ["'${Origin}'", {"Origin": FIRST_ORIGIN}]}
                continue
            if static_header(value) is None:
                fail(f"{where}: header {name} is not a quoted static value: {value!r}")
            headers[name] = static_header(value)
        if headers.get("Content-Type") != "application/json; charset=utf-8":
            fail(f"{where}: Content-Type is {headers.get('Content-Type')!r}")
        templates = response.get("responseTemplates", {})
        if set(templates) != {"application/json"}:
            fail(f"{where}: needs exactly an application/json template, has {sorted(templates)}")
            continue
        status = response.get("statusCode")
        if not (isinstance(status, str) and status.isdigit()):
            fail(f"{where}: needs a fixed statusCode, has {status!r}")
            continue
        check_answer(where, int(status), templates["application/json"], headers, origin_ok)
    return len(responses)


def check_waf(resources, parameters, conditions):
    acls = [r for r in resources.values() if r["Type"] == "AWS::WAFv2::WebACL"]
    if len(acls) != 1:
        fail(f"expected one WAF web ACL, found {len(acls)}")
        return
    acl = acls[0]
    if "Condition" in acl and not condition(acl["Condition"], parameters, conditions):
        fail("the WAF web ACL is off by default (EnableWaf)")
    associations = [r for r in resources.values() if r["Type"] == "AWS::WAFv2::WebACLAssociation"]
    if len(associations) != 1 or not condition(associations[0].get("Condition", "WafEnabled"), parameters, conditions):
        fail("the WAF web ACL is not associated with the stage by default")
    properties = acl["Properties"]
    bodies = properties.get("CustomResponseBodies", {})
    rate_rules = 0
    for rule in properties["Rules"]:
        where = f"WAF rule {rule['Name']}"
        rate = rule["Statement"].get("RateBasedStatement")
        if rate:
            # No scope-down: every request counts, on both paths (and any other).
            if rate.get("AggregateKeyType") == "IP" and "ScopeDownStatement" not in rate:
                rate_rules += 1
            else:
                fail(f"{where}: a rate rule must count per IP over every path")
        block = rule["Action"].get("Block")
        if block is None:
            continue
        custom = block.get("CustomResponse")
        if custom is None:
            fail(f"{where}: blocks with WAF's bare 403; give it the contract's answer")
            continue
        headers, origin_ok = {}, False
        for header in custom.get("ResponseHeaders", []):
            if header["Name"] == "Access-Control-Allow-Origin":
                origin_ok = header["Value"] == FIRST_ORIGIN
            else:
                headers[header["Name"]] = header["Value"]
        body = bodies.get(custom.get("CustomResponseBodyKey"), {})
        if body.get("ContentType") != "APPLICATION_JSON":
            fail(f"{where}: its body is not JSON")
        check_answer(where, custom["ResponseCode"], body.get("Content", ""), headers, origin_ok)
    if rate_rules != 1:
        fail(f"expected one per-IP rate rule over every path, found {rate_rules}")


def check_routes(api_body):
    for path in PATHS:
        methods = api_body.get("paths", {}).get(path, {})
        for method in ("post", "options", "x-amazon-apigateway-any-method"):
            if method not in methods:
                fail(f"{path}: no {method} method")
        keyless = [m for m, spec in methods.items() if not any("api_key" in s for s in spec.get("security", []))]
        if keyless != ["options"]:
            fail(f"{path}: methods without the API key should be exactly OPTIONS, are {keyless}")


def check_settings(source, translated, parameters, contract):
    readme = (ROOT / "README.md").read_text()
    settings_section = markdown_section(readme, "Settings")
    abuse_section = markdown_section(readme, "Abuse limits")
    abuse = settings_table(abuse_section)
    documented = settings_table(settings_section) | abuse
    if contract is not None:
        for variable, default in contract.items():
            if variable not in documented:
                fail(f"README's settings table lacks {variable} (API.md has it)")
            elif documented[variable] != default:
                fail(f"README gives {variable} the default {documented[variable]!r}, API.md {default!r}")
    functions = {name: r for name, r in translated["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    if len(functions) != 2:
        fail(f"expected two functions, found {sorted(functions)}")
    checked = 0
    for variable, default in documented.items():
        refs = {name: f["Properties"].get("Environment", {}).get("Variables", {}).get(variable) for name, f in functions.items()}
        if variable in abuse and not all(refs.values()):
            fail(f"{variable} does not reach {sorted(n for n, r in refs.items() if not r)}")
            continue
        values = {json.dumps(r, sort_keys=True) for r in refs.values() if r is not None}
        if len(values) > 1:
            fail(f"{variable} differs between the functions: {values}")
        ref = next((r for r in refs.values() if r is not None), None)
        if not (isinstance(ref, dict) and ref.get("Ref") in source["Parameters"]):
            continue  # fixed in the template (OTP_STORE), or not set there (local only)
        parameter = source["Parameters"][ref["Ref"]]
        row = next(line for line in (settings_section + abuse_section).splitlines() if f"`{variable}`" in line)
        if "Default" not in parameter or "in AWS" in row:
            continue  # deploy-specific (AllowedOrigins, SsmPrefix)
        if str(parameter["Default"]) != default:
            fail(f"parameter {ref['Ref']} ({variable}) defaults to {parameter['Default']!r}, README says {default!r}")
        checked += 1
    return checked, len(abuse)


def check_alarms(translated):
    produced = set()
    for r in translated["Resources"].values():
        if r["Type"] == "AWS::Logs::MetricFilter":
            for t in r["Properties"]["MetricTransformations"]:
                produced.add(t["MetricName"])
    alarms = 0
    for name, r in translated["Resources"].items():
        if r["Type"] != "AWS::CloudWatch::Alarm":
            continue
        alarms += 1
        p = r["Properties"]
        watched = [p] if "MetricName" in p else [m["MetricStat"]["Metric"] for m in p.get("Metrics", []) if "MetricStat" in m]
        for metric in watched:
            namespace = json.dumps(metric.get("Namespace"))
            if "OtpService/" in namespace and metric["MetricName"] not in produced:
                fail(f"alarm {name} watches {metric['MetricName']}, which no metric filter produces")
    return alarms


def main():
    contract = read_contract()
    source, translated = translated_template()
    parameters = {name: p.get("Default") for name, p in source["Parameters"].items()}
    conditions = source.get("Conditions", {})
    apis = [r for r in translated["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi"]
    api_body = apis[0]["Properties"]["Body"]

    responses = check_gateway_responses(api_body)
    check_waf(source["Resources"], parameters, conditions)
    check_routes(api_body)

    plans = [r for r in translated["Resources"].values() if r["Type"] == "AWS::ApiGateway::UsagePlan"]
    quota = evaluate(plans[0]["Properties"].get("Quota"), parameters, conditions) if plans else None
    if len(plans) != 1 or quota not in (None, {"Ref": "AWS::NoValue"}):
        fail(f"the usage plan has a daily quota by default: {quota}")
    if not plans or "Throttle" not in plans[0]["Properties"]:
        fail("the usage plan has no throttle")

    settings, abuse = check_settings(source, translated, parameters, contract)
    alarms = check_alarms(translated)

    if failures:
        print("\n".join(f"FAIL {f}" for f in failures), file=sys.stderr)
        raise SystemExit(f"template check: {len(failures)} failed")
    print(
        f"template check: {responses} gateway responses and the WAF answers are the contract's; "
        f"every method routed; no daily quota and WAF on by default; {abuse} abuse limits reach both "
        f"functions, {settings} settings with the README's default; {alarms} alarms watch produced metrics"
    )


if __name__ == "__main__":
    main()
