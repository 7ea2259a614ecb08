"""Offline checks of template.yaml against the HTTP contract (API.md) and the README.

Run by scripts/lint-deploy with the tools venv's python (it needs samtranslator). It reads
the template as SAM transforms it, the way CloudFormation receives it, and checks:
- every answer API Gateway or WAF gives itself: the contract's JSON shape, a code of the
  contract's error table with its status, every header of API.md "Headers", and
  Retry-After where the contract asks for one;
- the routes: POST, OPTIONS (keyless) and every other method on both paths reach their
  function, which API Gateway may invoke; GET /.well-known/jwks.json reaches verify-otp,
  keyless; no dependency cycle; the tokens' issuer defaults to the ApiUrl output;
- the defaults: no daily quota on the usage plan, WAF on with a per-IP rate rule over
  every path and a tighter one on /api/send-otp than any that /api/verify-otp meets (with
  the defaults and with each samconfig.toml environment), AWS's managed lists without a
  Count override;
- every setting of the README's tables (which must agree with API.md) reaches both
  functions, with the table's default; no secret reaches a function's environment (no
  secret's variable, no NoEcho parameter);
- each function's role may read exactly the SSM parameters it uses (SECRETS_READ below),
  named one by one, and every secret of shared/src/secrets is readable by some role;
- the alarms watch metrics that the metric filters produce, and every alarm notifies the
  stack's SNS topic, which has an email subscription to a required parameter.

The contract is docs/API.md (or $OTP_API_MD, such as a newer draft to compare with): the
error table and headers below must equal it, and README's settings tables must list its
settings with its defaults.
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
    "channel_not_allowed": 400,
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
JWKS_PATH = "/.well-known/jwks.json"
# The SSM parameters (under SsmPrefix) each function reads, and so exactly what its role
# may read: send-otp never the signing keys, verify-otp never the Twilio or challenge
# secrets. A secret added to the code needs a line here and in the template.
SECRETS_READ = {
    "send-otp": {
        "session-secret",
        "code-pepper",
        "twilio-account-sid",
        "twilio-auth-token",
        "twilio-from",
        "twilio-messaging-service-sid",
        "captcha-secret",
        "gcp-credentials",
        "test-numbers",
    },
    "verify-otp": {"session-secret", "code-pepper", "gcp-credentials", "token-signing-keys", "test-numbers"},
}
PARAMETER_ARN = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${SsmPrefix}/"
# How WAF sees a path: with the stage in front.
STAGE_PREFIX = "/prod"
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
        if len(defaults) == 1 and normalise_default(defaults[0]) == "":
            defaults = defaults * len(variables)  # "unset" for a pair: each unset
        if not variables or len(defaults) != len(variables):
            raise SystemExit(f"cannot read the settings row {row}")
        for variable, default in zip(variables, defaults):
            settings[variable] = normalise_default(default)
    return settings


def read_contract():
    api_md = Path(os.environ.get("OTP_API_MD", ROOT / "docs" / "API.md"))
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
    text = Path(os.environ.get("OTP_TEMPLATE", ROOT / "template.yaml")).read_text()
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
        if key == "Fn::And":
            return all(evaluate(v, parameters, conditions) for v in arg)
        if key == "Fn::Or":
            return any(evaluate(v, parameters, conditions) for v in arg)
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


def no_value(value):
    return value == {"Ref": "AWS::NoValue"}


def waf_rules(acl, parameters, conditions):
    """The web ACL's rules as they deploy with `parameters` (conditional rules resolved)."""
    rules = []
    for rule in acl["Properties"]["Rules"]:
        if isinstance(rule, dict) and set(rule) == {"Fn::If"}:
            name, then, otherwise = rule["Fn::If"]
            rule = then if condition(name, parameters, conditions) else otherwise
        if not no_value(rule):
            rules.append(rule)
    return rules


def transformed(text, transformations):
    for t in sorted(transformations, key=lambda t: t["Priority"]):
        if t["Type"] == "LOWERCASE":
            text = text.lower()
        elif t["Type"] not in ("NONE", "URL_DECODE"):  # our paths hold nothing to decode
            raise SystemExit(f"check_template.py cannot apply the text transformation {t['Type']}")
    return text


def counts_path(rate, path):
    """Whether a rate rule counts a request to `path` (as WAF sees it, stage first)."""
    scope = rate.get("ScopeDownStatement")
    if scope is None:
        return True
    # The rule over every path but one (the status callbacks, which have their own).
    if set(scope) == {"NotStatement"}:
        return not counts_path({"ScopeDownStatement": scope["NotStatement"]["Statement"]}, path)
    match = scope.get("ByteMatchStatement")
    if match is None or "UriPath" not in match.get("FieldToMatch", {}):
        raise SystemExit(f"check_template.py cannot read the scope-down statement {scope}")
    seen = transformed(STAGE_PREFIX + path, match.get("TextTransformations", []))
    search = match["SearchString"]
    return {
        "CONTAINS": search in seen,
        "ENDS_WITH": seen.endswith(search),
        "STARTS_WITH": seen.startswith(search),
        "EXACTLY": seen == search,
    }[match["PositionalConstraint"]]


def samconfig_parameters(defaults):
    """{environment: parameters} for each deploy environment of samconfig.toml, over `defaults`."""
    import tomllib

    config = tomllib.load(open(ROOT / "samconfig.toml", "rb"))
    environments = {}
    for env, commands in config.items():
        if not isinstance(commands, dict) or "deploy" not in commands:
            continue
        overrides = commands["deploy"]["parameters"].get("parameter_overrides", [])
        if isinstance(overrides, str):
            overrides = overrides.split()
        environments[env] = defaults | dict(o.split("=", 1) for o in overrides)
    return environments


def check_waf_limits(acl, where, parameters, conditions):
    """Each path's tightest per-IP rate limit: sends must meet a lower one than verifies."""
    limits = {}
    for path in PATHS:
        rates = [r["Statement"]["RateBasedStatement"] for r in waf_rules(acl, parameters, conditions) if "RateBasedStatement" in r["Statement"]]
        counted = [int(evaluate(r["Limit"], parameters, conditions)) for r in rates if counts_path(r, path)]
        if not counted:
            fail(f"{where}: no WAF rate rule counts {path}")
            return
        limits[path] = min(counted)
    send, verify = limits["/api/send-otp"], limits["/api/verify-otp"]
    if not send < verify:
        fail(f"{where}: WAF lets one address send {send} times per 5 minutes, no fewer than its {verify} verifies")
    return limits


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
    # Every optional rule on, so that each one is checked, not only the defaults.
    every_rule_on = parameters | {name: "true" for name in ("WafIpReputationList", "WafAnonymousIpList") if name in parameters}
    managed = set()
    rate_rules = 0
    for rule in waf_rules(acl, every_rule_on, conditions):
        where = f"WAF rule {rule['Name']}"
        group = rule["Statement"].get("ManagedRuleGroupStatement")
        if group:
            managed.add(group["Name"])
            # Count would only log; None lets the group's own rules block (API Gateway then
            # answers WAF_FILTERED, checked with the gateway responses).
            if rule.get("OverrideAction") != {"None": {}} or group.get("RuleActionOverrides"):
                fail(f"{where}: a managed rule group must block as AWS made it (OverrideAction None)")
            continue
        rate = rule["Statement"].get("RateBasedStatement")
        if rate:
            if rate.get("AggregateKeyType") != "IP":
                fail(f"{where}: a rate rule must count per connecting IP, never a forwarded header")
            elif "ScopeDownStatement" not in rate or set(rate["ScopeDownStatement"]) == {"NotStatement"}:
                rate_rules += 1
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
        fail(f"expected one per-IP rate rule over every path (but the status callbacks'), found {rate_rules}")
    wanted = {"AWSManagedRulesAmazonIpReputationList", "AWSManagedRulesAnonymousIpList"}
    if managed != wanted:
        fail(f"the WAF's optional managed rule groups are {sorted(managed)}, expected {sorted(wanted)}")
    if not any("ManagedRuleGroupStatement" in r["Statement"] for r in waf_rules(acl, parameters, conditions)):
        fail("the IP reputation list is off by default")
    limits = check_waf_limits(acl, "defaults", parameters, conditions)
    for env, values in samconfig_parameters(parameters).items():
        if condition("WafEnabled", values, conditions):
            check_waf_limits(acl, f"samconfig.toml [{env}]", values, conditions)
    return limits


def keyed(spec):
    return any("api_key" in s for s in spec.get("security", []))


def reached_function(spec, source):
    """The template's function an API method's integration invokes: by its ARN, or by name."""
    uri = json.dumps(spec.get("x-amazon-apigateway-integration", {}).get("uri"))
    for name, r in source["Resources"].items():
        if r["Type"] != "AWS::Serverless::Function":
            continue
        function_name = r["Properties"].get("FunctionName", {})
        by_name = isinstance(function_name, dict) and f"function:{function_name.get('Fn::Sub')}/invocations" in uri
        if by_name or f"${{{name}.Arn}}" in uri:
            return name
    return None


def check_routes(api_body, source):
    serving = {"/api/send-otp": "SendOtpFunction", "/api/verify-otp": "VerifyOtpFunction", JWKS_PATH: "VerifyOtpFunction"}
    for path, function in serving.items():
        for method, spec in api_body.get("paths", {}).get(path, {}).items():
            if reached_function(spec, source) != function:
                fail(f"{method.upper()} {path}: reaches {reached_function(spec, source)}, not {function}")
        # API Gateway may invoke it there (a permission whose source ARN covers the path).
        if source["Resources"][function]["Properties"].get("Events"):
            continue  # SAM writes the permission of an event
        allowed = [
            r
            for r in source["Resources"].values()
            if r["Type"] == "AWS::Lambda::Permission"
            and r["Properties"].get("FunctionName") == {"Ref": function}
            and r["Properties"].get("Principal") == "apigateway.amazonaws.com"
            and str(r["Properties"].get("SourceArn", {}).get("Fn::Sub", "")).endswith(path)
        ]
        if not allowed:
            fail(f"{path}: no permission lets API Gateway invoke {function} there")
    for path in PATHS:
        methods = api_body.get("paths", {}).get(path, {})
        for method in ("post", "options", "x-amazon-apigateway-any-method"):
            if method not in methods:
                fail(f"{path}: no {method} method")
        keyless = [m for m, spec in methods.items() if not keyed(spec)]
        if keyless != ["options"]:
            fail(f"{path}: methods without the API key should be exactly OPTIONS, are {keyless}")
    # Any backend fetches the public keys, with no key of ours: its own GET, keyless, to
    # verify-otp (which holds them).
    methods = api_body.get("paths", {}).get(JWKS_PATH, {})
    if set(methods) != {"get"}:
        fail(f"{JWKS_PATH}: needs exactly a GET method, has {sorted(methods)}")
    elif keyed(methods["get"]):
        fail(f"{JWKS_PATH}: GET must need no API key")



def dependencies(value, names):
    """The resources `value` refers to (Ref, GetAtt, ${...} in Sub)."""
    found = set()
    if isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add(arg[0] if isinstance(arg, list) else arg.split(".")[0])
            elif key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
                if not isinstance(arg, str):
                    found |= dependencies(arg[1], names)
            else:
                found |= dependencies(arg, names)
    elif isinstance(value, list):
        for item in value:
            found |= dependencies(item, names)
    return found & names


def check_no_cycle(translated):
    """CloudFormation refuses a template whose resources depend on each other in a circle
    (cfn-lint does not see one made by the SAM transform): the functions take the API's
    URL, so the API must not take the functions' ARNs."""
    resources = translated["Resources"]
    names = set(resources)
    graph = {}
    for name, r in resources.items():
        depends = r.get("DependsOn", [])
        graph[name] = dependencies({k: v for k, v in r.items() if k != "DependsOn"}, names) | set(
            [depends] if isinstance(depends, str) else depends
        )
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                fail(f"a dependency cycle: {' -> '.join(trail[trail.index(nxt):] + [nxt])}")
                return True
            if nxt not in state and visit(nxt, trail + [nxt]):
                return True
        state[node] = "done"
        return False

    for node in sorted(graph):
        if node not in state and visit(node, [node]):
            break


def check_issuer(source):
    """The tokens' default issuer is the API's URL, as the ApiUrl output gives it."""
    issuer = source["Globals"]["Function"]["Environment"]["Variables"].get("OTP_TOKEN_ISSUER")
    default = issuer.get("Fn::If", [None, None, None])[2] if isinstance(issuer, dict) else None
    api_url = source["Outputs"]["ApiUrl"]["Value"]
    if source["Parameters"].get("TokenIssuer", {}).get("Default") != "" or default != api_url:
        fail(f"OTP_TOKEN_ISSUER must default (empty TokenIssuer) to the ApiUrl output {api_url}, is {issuer}")


def code_secrets():
    """{ssm name: variable} of every secret shared/src/secrets names."""
    text = (ROOT / "shared" / "src" / "secrets" / "mod.rs").read_text()
    names = dict(re.findall(r'SecretName\s*\{\s*ssm:\s*"([a-z-]+)",\s*env:\s*"([A-Z0-9_]+)"', text))
    if "session-secret" not in names:
        raise SystemExit("cannot read the secrets' names from shared/src/secrets/mod.rs")
    return names


def check_secret_access(source):
    """Each function's role reads exactly its SSM parameters, named one by one."""
    resources = source["Resources"]
    readable = set()
    for name, function in resources.items():
        if function["Type"] != "AWS::Serverless::Function":
            continue
        binary = function.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        role = function["Properties"].get("Role", {}).get("Fn::GetAtt", [None])[0]
        if binary not in SECRETS_READ or role not in resources:
            fail(f"{name}: expected a function of {sorted(SECRETS_READ)} with a role of the template")
            continue
        properties = resources[role]["Properties"]
        if properties.get("ManagedPolicyArns"):
            fail(f"{role}: no managed policy, so that what it may read stays in the template")
        granted = set()
        for policy in properties.get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if no_value(statement) or "Fn::If" in statement:
                    statement = statement.get("Fn::If", [None, {}, {}])[1]  # the KMS grant, when on
                actions = statement.get("Action", [])
                actions = [actions] if isinstance(actions, str) else actions
                ssm = [a for a in actions if a.lower().startswith("ssm:") or a == "*"]
                if not ssm:
                    continue
                if ssm != ["ssm:GetParameters"] or statement.get("Effect") != "Allow":
                    fail(f"{role}: SSM actions should be exactly ssm:GetParameters, are {actions}")
                targets = statement.get("Resource", [])
                targets = targets if isinstance(targets, list) else [targets]
                for target in targets:
                    arn = target.get("Fn::Sub") if isinstance(target, dict) else target
                    if not (isinstance(arn, str) and arn.startswith(PARAMETER_ARN)) or "*" in arn:
                        fail(f"{role}: may read {target!r}; name each parameter under SsmPrefix, no wildcard")
                        continue
                    granted.add(arn.removeprefix(PARAMETER_ARN))
        if granted != SECRETS_READ[binary]:
            fail(
                f"{role} ({binary}) may read {sorted(granted)}; it uses exactly {sorted(SECRETS_READ[binary])} "
                f"(too many: {sorted(granted - SECRETS_READ[binary])}, missing: {sorted(SECRETS_READ[binary] - granted)})"
            )
        readable |= granted
    unread = sorted(set(code_secrets()) - readable)
    if unread:
        fail(f"secrets of shared/src/secrets no role may read: {unread} (add them to SECRETS_READ and the roles)")
    return len(readable)


def check_no_secret_in_environment(source, translated):
    """No secret is plain text in a function's configuration."""
    variables = set(code_secrets().values())
    no_echo = {name for name, p in source["Parameters"].items() if p.get("NoEcho")}
    for name, function in translated["Resources"].items():
        if function["Type"] != "AWS::Lambda::Function":
            continue
        environment = function["Properties"].get("Environment", {}).get("Variables", {})
        for variable in sorted(set(environment) & variables):
            fail(f"{name}: the secret {variable} is an environment variable; it belongs in SSM")
        for variable, value in environment.items():
            used = {m for m in re.findall(r'"Ref": "([A-Za-z0-9]+)"', json.dumps(value))} | set(
                re.findall(r"\$\{([A-Za-z0-9]+)\}", json.dumps(value))
            )
            if used & no_echo:
                fail(f"{name}: {variable} takes the NoEcho parameter {sorted(used & no_echo)}: a secret belongs in SSM")


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
    secret_variables = set(code_secrets().values())
    for variable, default in documented.items():
        if variable in secret_variables:
            continue  # a secret: from SSM, never the environment (check_no_secret_in_environment)
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


def alarm_topics(source):
    """The stack's SNS topics with an email subscription to a required parameter."""
    resources, parameters = source["Resources"], source["Parameters"]
    topics = set()
    for r in resources.values():
        if r["Type"] != "AWS::SNS::Subscription" or "Condition" in r:
            continue
        p = r["Properties"]
        endpoint = p.get("Endpoint", {}).get("Ref") if isinstance(p.get("Endpoint"), dict) else None
        topic = p.get("TopicArn", {}).get("Ref") if isinstance(p.get("TopicArn"), dict) else None
        if p.get("Protocol") == "email" and endpoint in parameters and "Default" not in parameters[endpoint]:
            if topic in resources and resources[topic]["Type"] == "AWS::SNS::Topic" and "Condition" not in resources[topic]:
                topics.add(topic)
    return topics


def check_alarms(translated, source, parameters, conditions):
    topics = alarm_topics(source)
    if not topics:
        fail("no SNS topic of the stack with an email subscription to a required parameter: the alarms page no one")
    produced = set()
    for r in translated["Resources"].values():
        if r["Type"] == "AWS::Logs::MetricFilter":
            for t in r["Properties"]["MetricTransformations"]:
                produced.add(t["MetricName"])
    # The embedded-metric-format lines the service prints itself (shared/src/adapters/emf.rs).
    emf = (ROOT / "shared/src/adapters/emf.rs").read_text()
    produced |= set(re.findall(r'\("([A-Za-z]+)", "(?:Count|Milliseconds)"', emf))
    produced |= set(re.findall(r'=> "([A-Z][A-Za-z]+)",', emf))
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
        # With the defaults (and so always): an alarm notifies the stack's topic.
        actions = evaluate(p.get("AlarmActions"), parameters, conditions)
        notified = {a.get("Ref") for a in actions if isinstance(a, dict)} if isinstance(actions, list) else set()
        if not notified & topics:
            fail(f"alarm {name} notifies {actions!r}, not the stack's alarm topic {sorted(topics)}")
    return alarms


def main():
    contract = read_contract()
    source, translated = translated_template()
    parameters = {name: p.get("Default") for name, p in source["Parameters"].items()}
    conditions = source.get("Conditions", {})
    apis = [r for r in translated["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi"]
    api_body = apis[0]["Properties"]["Body"]

    responses = check_gateway_responses(api_body)
    limits = check_waf(source["Resources"], parameters, conditions) or {}
    check_routes(api_body, source)
    check_no_cycle(translated)
    check_issuer(source)
    readable = check_secret_access(source)
    check_no_secret_in_environment(source, translated)

    plans = [r for r in translated["Resources"].values() if r["Type"] == "AWS::ApiGateway::UsagePlan"]
    quota = evaluate(plans[0]["Properties"].get("Quota"), parameters, conditions) if plans else None
    if len(plans) != 1 or quota not in (None, {"Ref": "AWS::NoValue"}):
        fail(f"the usage plan has a daily quota by default: {quota}")
    if not plans or "Throttle" not in plans[0]["Properties"]:
        fail("the usage plan has no throttle")

    settings, abuse = check_settings(source, translated, parameters, contract)
    alarms = check_alarms(translated, source, parameters, conditions)

    if failures:
        print("\n".join(f"FAIL {f}" for f in failures), file=sys.stderr)
        raise SystemExit(f"template check: {len(failures)} failed")
    print(
        f"template check: {responses} gateway responses and the WAF answers are the contract's; "
        f"every method routed, the JWK Set keyless; no daily quota and WAF on by default, per IP per 5 minutes "
        f"{limits.get('/api/send-otp')} sends and {limits.get('/api/verify-otp')} verifies; {abuse} abuse limits reach both "
        f"functions, {settings} settings with the README's default, no secret in an environment; the roles read "
        f"{readable} parameters, each exactly its own; {alarms} alarms watch produced metrics and page the alarm topic"
    )


if __name__ == "__main__":
    main()
