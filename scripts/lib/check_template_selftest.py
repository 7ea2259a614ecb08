"""Shows that check_template.py catches what it says it catches: each case below breaks
template.yaml in one way a later edit could, and the check must then fail, naming it.

Run by scripts/lint-deploy after check_template.py passes on the real template. A case
whose text is no longer in the template fails too, so the cases cannot rot unnoticed.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECK = Path(__file__).with_name("check_template.py")

ARN = "                  - !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${SsmPrefix}/"

# (what breaks, text in template.yaml, its replacement, what the failure must mention)
CASES = [
    (
        "verify-otp's role may read the Twilio token",
        # verify-otp's list is the one with token-signing-keys right after gcp-credentials.
        ARN + "gcp-credentials\n" + ARN + "token-signing-keys\n",
        ARN + "gcp-credentials\n" + ARN + "token-signing-keys\n" + ARN + "twilio-auth-token\n",
        "too many: ['twilio-auth-token']",
    ),
    (
        "send-otp's role may read the signing keys",
        "parameter${SsmPrefix}/twilio-messaging-service-sid\n",
        "parameter${SsmPrefix}/twilio-messaging-service-sid\n"
        "                  - !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${SsmPrefix}/token-signing-keys\n",
        "too many: ['token-signing-keys']",
    ),
    (
        "a role may read the whole prefix again",
        "parameter${SsmPrefix}/captcha-secret\n",
        "parameter${SsmPrefix}/*\n",
        "no wildcard",
    ),
    (
        "the test numbers are a stack variable again",
        "        OTP_TEST_NUMBERS_IN_LAMBDA: !Ref TestNumbersInLambda\n",
        "        OTP_TEST_NUMBERS_IN_LAMBDA: !Ref TestNumbersInLambda\n        OTP_TEST_NUMBERS: !Ref TestNumbersInLambda\n",
        "the secret OTP_TEST_NUMBERS is an environment variable",
    ),
    (
        "a NoEcho parameter reaches the environment",
        "  TestNumbersInLambda:\n    Type: String\n",
        "  TestNumbersInLambda:\n    Type: String\n    NoEcho: true\n",
        "takes the NoEcho parameter ['TestNumbersInLambda']",
    ),
    (
        "an alarm without actions",
        "      AlarmActions: !If [HasAlarmTopic, [!Ref AlarmTopic, !Ref AlarmTopicArn], [!Ref AlarmTopic]]\n",
        "      AlarmActions: !If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]\n",
        "not the stack's alarm topic",
    ),
    (
        "no email subscription",
        "      Protocol: email\n",
        "      Protocol: sqs\n",
        "the alarms page no one",
    ),
    (
        "the JWK Set needs the API key",
        "verify-otp/invocations\n              security: [{ api_key_false: [] }]\n      # SAM redeploys",
        "verify-otp/invocations\n      # SAM redeploys",
        "GET must need no API key",
    ),
    (
        "the API takes a function's ARN while the function takes the API's URL",
        "functions/arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-send-otp/invocations",
        "functions/${SendOtpFunction.Arn}/invocations",
        "a dependency cycle",
    ),
    (
        "the tokens' issuer is a fixed name again",
        "  TokenIssuer:\n    Type: String\n    Default: \"\"\n",
        "  TokenIssuer:\n    Type: String\n    Default: otp-service\n",
        "OTP_TOKEN_ISSUER must default",
    ),
    (
        "the JWK Set served by send-otp",
        "function:${AWS::StackName}-verify-otp/invocations\n              security: [{ api_key_false: [] }]\n      # SAM redeploys",
        "function:${AWS::StackName}-send-otp/invocations\n              security: [{ api_key_false: [] }]\n      # SAM redeploys",
        "reaches SendOtpFunction, not VerifyOtpFunction",
    ),
    (
        "sends no tighter than verifies at the WAF",
        "  WafSendRateLimitPer5Min:\n    Type: Number\n    Default: 20\n",
        "  WafSendRateLimitPer5Min:\n    Type: Number\n    Default: 100\n",
        "no fewer than its 100 verifies",
    ),
    (
        "a managed rule group that only counts",
        "          - Name: aws-ip-reputation-list\n            Priority: 3\n            OverrideAction: { None: {} }\n",
        "          - Name: aws-ip-reputation-list\n            Priority: 3\n            OverrideAction: { Count: {} }\n",
        "must block as AWS made it",
    ),
]


def main():
    template = (ROOT / "template.yaml").read_text()
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for what, old, new, mention in CASES:
            # Only the first occurrence: one alarm, one role, one rule.
            if template.count(old) < 1:
                failures.append(f"{what}: its text is no longer in template.yaml; update the case")
                continue
            broken = Path(tmp) / "template.yaml"
            broken.write_text(template.replace(old, new, 1))
            run = subprocess.run(
                [sys.executable, str(CHECK)],
                env=os.environ | {"OTP_TEMPLATE": str(broken)},
                capture_output=True,
                text=True,
            )
            if run.returncode == 0:
                failures.append(f"{what}: check_template.py passed")
            elif mention not in run.stderr:
                failures.append(f"{what}: check_template.py failed without naming it ({mention!r}):\n{run.stderr}")
            else:
                print(f"  caught: {what}")
    if failures:
        raise SystemExit("check_template.py self-test:\n" + "\n".join(failures))
    print(f"check_template.py self-test: all {len(CASES)} broken templates refused")


if __name__ == "__main__":
    main()
