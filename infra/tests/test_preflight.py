"""scripts/preflight: on recorded AWS answers (a new account, a ready one, a region without the
engine and without permission to read API Gateway), and against moto when it runs here."""

import io
import os
import pathlib
import unittest
from unittest import mock

import scripts

ROOT = pathlib.Path(__file__).resolve().parents[2]
ANSWERS = pathlib.Path(__file__).resolve().parent / "preflight"


def preflight():
    return scripts.load("preflight")


class Preflight(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pf = preflight()

    def run_on(self, answers, *args):
        out = io.StringIO()
        status = self.pf.main(["--answers", str(ANSWERS / answers), *args], out)
        return status, out.getvalue()

    def lines(self, text, status):
        return [line for line in text.splitlines() if line.startswith(f"[{status:>4}]")]

    def test_a_new_account_is_told_what_to_fix(self):
        status, text = self.run_on(
            "new-account.json",
            "--config-env", "prod",
            "--parameter-overrides", "Bedrock=1 BedrockModels=anthropic.claude-sonnet-4-5-20250929-v1:0,amazon.nova-lite-v1:0 SignUp=domains",
        )
        self.assertEqual(status, 1, text)
        failed = "\n".join(self.lines(text, "FAIL"))
        # Nothing reserved: the deploy comes up, but users will be throttled.
        self.assertIn("Lambda concurrency is 10", "\n".join(self.lines(text, "WARN")))
        self.assertIn("anthropic.claude-sonnet-4-5-20250929-v1:0 is not usable", failed)
        self.assertNotIn("nova-lite", failed)
        self.assertIn("Service Quotas", text)
        self.assertIn("request access in the Bedrock console", text)
        warned = "\n".join(self.lines(text, "WARN"))
        self.assertIn("SES is in its sandbox", warned)
        self.assertIn("at most 50 messages a day", warned)
        # No role in the account and the default (create): nothing to do there.
        self.assertIn("API Gateway CloudWatch role: absent, ApiGatewayAccountRole=create", text)

    def test_a_ready_account_passes_and_is_told_to_keep_its_role(self):
        status, text = self.run_on("ready-account.json")
        self.assertEqual(status, 0, text)
        self.assertEqual(self.lines(text, "FAIL"), [])
        self.assertIn("ApiGatewayAccountRole=exists", text)
        self.assertIn("Bedrock is off", text)
        self.assertIn("Aurora PostgreSQL 17.7 with Serverless v2 and RDS Proxy", text)

    def test_exists_without_a_role_fails(self):
        status, text = self.run_on("new-account.json", "--parameter-overrides", "ApiGatewayAccountRole=exists")
        self.assertEqual(status, 1)
        self.assertIn("has no API Gateway CloudWatch role", "\n".join(self.lines(text, "FAIL")))

    def test_reserving_more_than_the_account_allows_fails(self):
        status, text = self.run_on("ready-account.json", "--parameter-overrides", "ChatTurnConcurrency=950")
        self.assertEqual(status, 1)
        self.assertIn("reserving 950", text)

    def test_an_unreadable_answer_is_a_warning_and_a_missing_engine_a_failure(self):
        status, text = self.run_on("old-region.json")
        self.assertEqual(status, 1)
        self.assertIn("could not check: AccessDeniedException", "\n".join(self.lines(text, "WARN")))
        self.assertIn("Aurora PostgreSQL 17.7 is not offered", "\n".join(self.lines(text, "FAIL")))

    def test_a_pausing_database_needs_an_engine_that_can_pause(self):
        status, text = self.run_on("no-pause.json")
        self.assertEqual(status, 1)
        self.assertIn("DatabaseMinAcu=0 is below", "\n".join(self.lines(text, "FAIL")))
        status, _ = self.run_on("no-pause.json", "--config-env", "prod")
        self.assertEqual(status, 0)

    def test_command_line_overrides_replace_the_environments_as_sam_does(self):
        # dev's DatabaseMinAcu=0 is not kept when the command line gives a list without it: the
        # template's default (0.5) applies, which this engine allows.
        status, text = self.run_on("no-pause.json", "--parameter-overrides", "Environment=dev")
        self.assertEqual(status, 0, text)

    def test_the_engine_checked_is_the_templates(self):
        template = (ROOT / "infra" / "template.yaml").read_text()
        self.assertIn(f'EngineVersion: "{self.pf.template_defaults()["EngineVersion"]}"', template)

    @unittest.skipUnless(os.environ.get("MOTO_URL"), "moto is not running")
    def test_against_moto_the_answers_decide_and_what_cannot_be_read_is_a_warning(self):
        import boto3

        env = {
            "AWS_ENDPOINT_URL": os.environ["MOTO_URL"],
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }

        def run():
            out = io.StringIO()
            with mock.patch.dict(os.environ, env):
                status = self.pf.main(["--region", "eu-west-1"], out)
            return status, out.getvalue()

        with mock.patch.dict(os.environ, env):
            apigateway = boto3.client("apigateway", region_name="eu-west-1")
            apigateway.update_account(patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": ""}])
        status, text = run()
        self.assertIn("API Gateway CloudWatch role: absent", text)
        # What moto does not answer is unknown, not a failure, and each check printed a verdict.
        self.assertEqual(status, 0, text)
        for check in ("Lambda concurrency", "API Gateway account role", "Aurora and RDS Proxy", "Email"):
            self.assertRegex(text, rf"\[(  ok|WARN)\] {check}:")

        role = "arn:aws:iam::123456789012:role/apigw-logs"
        with mock.patch.dict(os.environ, env):
            apigateway.update_account(patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": role}])
        try:
            status, text = run()
            self.assertIn(f"already has an API Gateway CloudWatch role ({role})", text)
            self.assertIn("ApiGatewayAccountRole=exists", text)
        finally:
            with mock.patch.dict(os.environ, env):
                apigateway.update_account(patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": ""}])
