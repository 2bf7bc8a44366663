"""The grant inventory holds: what the template grants, per environment, is what infra/grants.json
says (reviewed), and the realistic ways a grant widens each change it."""

import copy
import json
import unittest

import grants
from expand import expanded

REGENERATE = "after review: infra venv python infra/tests/grants.py --write"


def differences(stored, now):
    names = sorted(set(stored) | set(now))
    return [n for n in names if stored.get(n) != now.get(n)]


class Inventory(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stored = json.loads(grants.INVENTORY.read_text())
        cls.environments = grants.environments()
        cls.dev = grants.inventory(expanded(cls.environments["default"]))

    def test_every_environment_grants_what_the_inventory_says(self):
        now = grants.compute()
        self.assertEqual(sorted(now), sorted(self.stored), REGENERATE)
        for env in now:
            changed = differences(grants.resolved(self.stored, env), grants.resolved(now, env))
            self.assertEqual(changed, [], f"{env}: these grants changed; {REGENERATE}")

    def test_every_resource_type_is_classified(self):
        # A new kind of resource may carry a grant the inventory would not see.
        for parameters in self.environments.values():
            self.assertEqual(grants.unclassified(expanded(parameters)), [])

    def test_the_inventory_sees_roles_and_resource_policies(self):
        kinds = {entry["Type"] for entry in self.dev.values()}
        for kind in (
            "AWS::IAM::Role",
            "AWS::IAM::ManagedPolicy",
            "AWS::S3::BucketPolicy",
            "AWS::KMS::Key",
            "AWS::Lambda::Permission",
            "AWS::SNS::TopicPolicy",
            "AWS::RDS::DBProxy",
            "AWS::ElastiCache::User",
        ):
            self.assertIn(kind, kinds)
        # Nested stacks' functions are in it too.
        self.assertIn("ToolsCreateFunctionRole", self.dev)

    def test_optional_grants_are_inventoried_on(self):
        every = grants.resolved(self.stored, "every-option")
        bedrock = json.dumps(every["ChatTurnFunctionRole"])
        self.assertIn("bedrock:InvokeModelWithResponseStream", bedrock)
        self.assertNotIn("bedrock:", json.dumps(grants.resolved(self.stored, "default")))


def widen(stack, change):
    """An edit that applies `change` to the source of `stack` only."""

    def edit(name, template):
        if name != stack:
            return template
        template = copy.deepcopy(template)
        change(template["Resources"])
        return template

    return edit


def function_statements(resources, function):
    for policy in resources[function]["Properties"]["Policies"]:
        if isinstance(policy, dict) and "Statement" in policy:
            return policy["Statement"]
    raise AssertionError(f"{function} has no inline statements")


def add(resources, name, kind, properties):
    resources[name] = {"Type": kind, "Properties": properties}


ANYONE_INVOKES = {
    "Action": "lambda:InvokeFunction",
    "FunctionName": {"Ref": "HealthFunction"},
    "Principal": "*",
}
OPEN_STATEMENT = {"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}

# The over-grants a reviewer tried against the old tests, and their neighbours.
OVER_GRANTS = {
    "a standalone policy attached to a role": widen("root", lambda r: add(r, "Extra", "AWS::IAM::Policy", {
        "PolicyName": "extra",
        "Roles": [{"Ref": "HealthFunctionRole"}],
        "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]},
    })),
    "any database user": widen("root", lambda r: r["DatabaseConnectPolicy"]["Properties"]["PolicyDocument"]["Statement"][0].update(
        Resource={"Fn::Sub": "arn:${AWS::Partition}:rds-db:${AWS::Region}:${AWS::AccountId}:dbuser:*/*"})),
    "anyone may invoke a function": widen("root", lambda r: add(r, "OpenInvoke", "AWS::Lambda::Permission", ANYONE_INVOKES)),
    "anyone in a key policy": widen("root", lambda r: r["ApiKeysKey"]["Properties"]["KeyPolicy"]["Statement"].append(OPEN_STATEMENT)),
    "a new action on an existing grant": widen("ToolsApi", lambda r: function_statements(r, "ToolsCreateFunction")[0]["Action"].append("s3:GetObject")),
    "a dropped kms:ViaService condition": widen("root", lambda r: [
        s.pop("Condition", None)
        for p in r["DatabaseProxyRole"]["Properties"]["Policies"]
        for s in p["PolicyDocument"]["Statement"]
    ]),
    "a wider S3 prefix in a nested stack": widen("ToolsApi", lambda r: function_statements(r, "ToolsCreateFunction")[0].update(
        Resource={"Fn::Sub": "${BlobBucketArn}/*"})),
    "an AWS managed policy on a function": widen("ProvidersApi", lambda r: r["ProviderConfigsPutFunction"]["Properties"]["Policies"].append("AdministratorAccess")),
    "a bucket readable by anyone": widen("root", lambda r: r["BlobBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": {"Fn::Sub": "${BlobBucket.Arn}/*"}})),
    "a topic anyone may publish to": widen("root", lambda r: r["AlarmTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"][0].pop("Condition")),
    "a queue policy": widen("root", lambda r: add(r, "QueueOpen", "AWS::SQS::QueuePolicy", {
        "Queues": [{"Ref": "AsyncFailureQueue"}],
        "PolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "*"}]},
    })),
    "a wider trust policy": widen("root", lambda r: r["HealthFunction"]["Properties"].update(AssumeRolePolicyDocument={
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    })),
    "a route without its authorizer": widen("ConversationsApi", lambda r: [
        route["Properties"].update(AuthorizationType="NONE") or route["Properties"].pop("AuthorizerId", None)
        for route in r.values() if isinstance(route, dict) and route["Type"] == "AWS::ApiGatewayV2::Route"
    ][:1]),
    "a wider cache user": widen("root", lambda r: r["CacheAppUser"]["Properties"].update(AccessString="on ~* &* +@all")),
    "a logs resource policy": widen("root", lambda r: add(r, "LogsOpen", "AWS::Logs::ResourcePolicy", {
        "PolicyName": "open",
        "PolicyDocument": json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "logs:*", "Resource": "*"}]}),
    })),
    "a decrypt for one more function": widen("ConversationsApi", lambda r: r["ConversationsGetFunction"]["Properties"]["Policies"].append(
        {"Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": {"Ref": "ApiKeysKeyArn"}}]})),
    "the executor may tag compiled code": widen("root", lambda r: function_statements(r, "ToolExecutorFunction")[-1]["Action"].append("kms:GenerateMac")),
}


class OverGrants(unittest.TestCase):
    """Each realistic over-grant, applied to the template, changes the inventory (and so fails
    the inventory test until someone reviews and rewrites grants.json)."""

    @classmethod
    def setUpClass(cls):
        cls.parameters = grants.environments()["default"]
        cls.baseline = grants.inventory(expanded(cls.parameters))

    def test_each_over_grant_changes_the_inventory(self):
        for name, edit in OVER_GRANTS.items():
            with self.subTest(name):
                changed = grants.inventory(expanded(self.parameters, edit))
                self.assertNotEqual(differences(self.baseline, changed), [], name)


if __name__ == "__main__":
    unittest.main()
