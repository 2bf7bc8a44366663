"""Least privilege per function, read off the template as CloudFormation expands it.

Each test names who may do one thing (decrypt provider keys, post to connections, invoke a
function, reach the database...) and fails when any other function gains it, or one of them
loses it. Run: python -m unittest discover infra/tests
"""

import pathlib
import re
import tomllib
import unittest

from expand import as_list, expanded, of_type, refs, source, statements

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Functions outside the VPC: they reach neither the database nor the cache.
OUT_OF_VPC = {
    "HealthFunction",
    "OpenApiFunction",
    "WsAuthorizerFunction",
    "WsDisconnectFunction",
    "ToolExecutorFunction",
    "ToolCompilerFunction",
    "WebPublishFunction",
    # Deploys and sign-ups: they must answer CloudFormation and Cognito whatever the VPC does.
    "MigrateResourceFunction",
    "SignUpCheckFunction",
}
# In the VPC for the cache only: `$connect` counts each user's new connections there.
CACHE_ONLY = {"WsConnectFunction"}
# Functions that run asynchronously (an Event invoke or a schedule).
ASYNC = {"ChatTurnFunction", "SummarizeFunction", "JanitorFunction"}


class ExpandedTemplate(unittest.TestCase):
    # The parameters of the environment under test (the template's defaults here; the
    # samconfig environments below).
    parameters = {}

    @classmethod
    def setUpClass(cls):
        cls.template = expanded(cls.parameters)
        cls.functions = of_type(cls.template, "AWS::Lambda::Function")
        cls.roles = of_type(cls.template, "AWS::IAM::Role")
        cls.managed = of_type(cls.template, "AWS::IAM::ManagedPolicy")

    def role_of(self, function):
        return self.roles[function + "Role"]

    def attached(self, function):
        """The template's managed policies attached to a function's role."""
        return refs(self.role_of(function)["Properties"].get("ManagedPolicyArns", []))

    def grants(self, function):
        """(action, resource) for every statement the function's role holds, inline or attached."""
        found = []
        documents = statements(self.role_of(function))
        for policy in self.attached(function):
            documents += self.managed[policy]["Properties"]["PolicyDocument"]["Statement"]
        for statement in documents:
            self.assertEqual(statement.get("Effect"), "Allow")
            for action in as_list(statement["Action"]):
                for resource in as_list(statement["Resource"]):
                    found.append((action, resource))
        return found

    def holders(self, action):
        return {f for f in self.functions if any(a == action for a, _ in self.grants(f))}

    def assert_scoped(self, service, resources):
        """Every grant of `service` (a prefix like "kms:") names only `resources`."""
        for name in self.functions:
            for action, resource in self.grants(name):
                if action.startswith(service):
                    self.assertEqual(refs(resource), resources, f"{name}: {action}")

    def environment(self, function):
        return self.functions[function]["Properties"].get("Environment", {}).get("Variables", {})


class Inventory(ExpandedTemplate):
    def test_every_function_has_its_own_role(self):
        self.assertGreaterEqual(len(self.functions), 38)
        for name, function in self.functions.items():
            self.assertEqual(refs(function["Properties"]["Role"]), {name + "Role"}, name)

    def test_each_role_may_be_assumed_by_lambda_only(self):
        for name in self.functions:
            trust = self.role_of(name)["Properties"]["AssumeRolePolicyDocument"]["Statement"]
            principals = {p for s in trust for p in as_list(s["Principal"]["Service"])}
            self.assertEqual(principals, {"lambda.amazonaws.com"}, name)


class NoWildcards(ExpandedTemplate):
    def test_no_function_may_do_everything_on_a_service(self):
        for name in self.functions:
            for action, _ in self.grants(name):
                self.assertNotEqual(action, "*", name)
                self.assertFalse(action.endswith(":*"), f"{name}: {action}")

    def test_no_function_statement_names_every_resource(self):
        # X-Ray and the VPC ENI actions (AWS managed policies) take no resource; everything
        # the template writes names one.
        for name in self.functions:
            for action, resource in self.grants(name):
                self.assertNotEqual(resource, "*", f"{name}: {action}")

    def test_only_aws_managed_policies_are_named_by_arn(self):
        allowed = {
            "AWSLambdaBasicExecutionRole",
            "AWSXrayWriteOnlyAccess",
            "AWSLambdaVPCAccessExecutionRole",
        }
        for name in self.functions:
            for arn in self.role_of(name)["Properties"].get("ManagedPolicyArns", []):
                if isinstance(arn, dict) and "Ref" in arn:
                    continue  # the template's own policies, read by grants()
                text = arn if isinstance(arn, str) else arn["Fn::Sub"]
                self.assertIn(":iam::aws:policy/", text, name)
                self.assertIn(text.rsplit("/", 1)[-1], allowed, name)


class Secrets(ExpandedTemplate):
    def test_provider_keys_are_decrypted_only_where_a_provider_is_called(self):
        self.assertEqual(
            self.holders("kms:Decrypt"),
            {
                "ProvidersListFunction",
                "ModelsListFunction",
                "ProviderConfigsPutFunction",
                "McpServersPutFunction",
                "ChatTurnFunction",
                "SummarizeFunction",
                # Stripe's keys, through Secrets Manager only (see below).
                "BillingCheckoutFunction",
                "BillingWebhookFunction",
            },
        )

    def test_stripes_keys_are_read_by_the_billing_functions_only(self):
        self.assertEqual(
            self.holders("secretsmanager:GetSecretValue"),
            {"BillingCheckoutFunction", "BillingWebhookFunction"},
        )
        for name in ("BillingCheckoutFunction", "BillingWebhookFunction"):
            for action, resource in self.grants(name):
                if action == "secretsmanager:GetSecretValue":
                    self.assertIn("-stripe-??????", resource["Fn::Sub"])
                if action == "kms:Decrypt":
                    via = [
                        s.get("Condition", {})
                        for s in self.managed["StripeSecretsReadPolicy"]["Properties"][
                            "PolicyDocument"
                        ]["Statement"]
                        if s["Action"] == "kms:Decrypt"
                    ]
                    self.assertIn("kms:ViaService", via[0]["StringEquals"])

    def test_keys_are_encrypted_only_where_they_are_stored(self):
        self.assertEqual(
            self.holders("kms:GenerateDataKey"),
            {"ProviderConfigsPutFunction", "McpServersPutFunction"},
        )

    def test_kms_grants_name_the_api_keys_key_only(self):
        # The MAC actions are the compiled code key's (see CompiledCode).
        for name in self.functions:
            for action, resource in self.grants(name):
                if action.startswith("kms:") and not action.endswith("Mac"):
                    self.assertEqual(refs(resource), {"ApiKeysKey"}, f"{name}: {action}")

    def test_no_function_reads_a_secret(self):
        # IAM authentication through RDS Proxy: only the proxy's role reads the master secret;
        # the billing functions read Stripe's keys (above), nothing else.
        billing = {"BillingCheckoutFunction", "BillingWebhookFunction"}
        for name in self.functions:
            for action, _ in self.grants(name):
                if name not in billing:
                    self.assertFalse(action.startswith("secretsmanager:"), f"{name}: {action}")
        readers = {
            role
            for role, body in self.roles.items()
            if any(
                "secretsmanager:GetSecretValue" in as_list(s["Action"]) for s in statements(body)
            )
        }
        self.assertEqual(readers, {"DatabaseProxyRole"})

    def test_secret_parameters_never_reach_a_function(self):
        secret = {n for n, p in source()["Parameters"].items() if p.get("NoEcho")}
        self.assertTrue(secret, "the template has secret parameters (the IdP client secrets)")
        for name in self.functions:
            self.assertFalse(refs(self.environment(name)) & secret, name)

    def test_database_url_holds_no_password(self):
        for name in self.functions:
            url = self.environment(name).get("DATABASE_URL", "")
            text = url if isinstance(url, str) else url["Fn::Sub"]
            self.assertNotIn(":", text.split("//", 1)[-1].split("@")[0], name)
            if text:
                self.assertEqual(self.environment(name)["DATABASE_IAM_AUTH"], "1", name)
                self.assertIn("sslmode=require", text, name)


class Streaming(ExpandedTemplate):
    def test_frames_are_posted_only_by_functions_that_stream(self):
        self.assertEqual(
            self.holders("execute-api:ManageConnections"),
            {
                # conversation.created/updated/deleted go to every device of the user
                "ConversationsCreateFunction",
                "ConversationsUpdateFunction",
                "ConversationsDeleteFunction",
                "MessagesSendFunction",
                "MessagesRetryFunction",
                "ToolExecutionsApproveFunction",
                "ToolExecutionsDenyFunction",
                "WsMessageFunction",
                "ChatTurnFunction",
                "SummarizeFunction",
                "JanitorFunction",
                # file.updated goes to every device of the user
                "FilesCompleteFunction",
                "FilesProcessFunction",
            },
        )

    def test_connections_are_registered_by_connect_and_removed_by_disconnect(self):
        self.assertEqual(self.holders("dynamodb:PutItem"), {"WsConnectFunction"})
        self.assertEqual(self.attached("WsDisconnectFunction"), {"ConnectionsRemovePolicy"})

    def test_dynamodb_grants_name_the_connections_table_only(self):
        self.assert_scoped("dynamodb:", {"ConnectionsTable"})


class Invocations(ExpandedTemplate):
    def invoked_by(self, function):
        targets = set()
        for action, resource in self.grants(function):
            if action == "lambda:InvokeFunction":
                sub = resource["Fn::Sub"]
                targets.update(refs(sub[1]))
        return targets

    def test_who_may_invoke_which_function(self):
        graph = {f: self.invoked_by(f) for f in self.functions}
        graph = {f: t for f, t in graph.items() if t}
        self.assertEqual(
            graph,
            {
                "MessagesSendFunction": {"ChatTurnFunction"},
                "MessagesRetryFunction": {"ChatTurnFunction"},
                "ToolsCreateFunction": {"ToolExecutorFunction"},
                "ToolExecutionsApproveFunction": {"ChatTurnFunction"},
                "ToolExecutionsDenyFunction": {"ChatTurnFunction"},
                "WsMessageFunction": {"ChatTurnFunction"},
                "JanitorFunction": {"ChatTurnFunction"},
                "ChatTurnFunction": {"SummarizeFunction", "ToolExecutorFunction"},
                # The executor runs guests, so another function compiles for it.
                "ToolExecutorFunction": {"ToolCompilerFunction"},
                # The Migrations resource, outside the VPC, starts the migration inside it.
                "MigrateResourceFunction": {"MigrateFunction"},
                # Processing runs apart from the API, asynchronously.
                "FilesCompleteFunction": {"FilesProcessFunction"},
            },
        )

    def test_invoked_functions_are_named_in_the_callers_environment(self):
        variables = {
            "ChatTurnFunction": "CHAT_TURN_FUNCTION",
            "SummarizeFunction": "SUMMARIZE_FUNCTION",
            "ToolExecutorFunction": "TOOL_EXECUTOR_FUNCTION",
            "ToolCompilerFunction": "TOOL_COMPILER_FUNCTION",
            "MigrateFunction": "MIGRATE_FUNCTION",
            "FilesProcessFunction": "FILES_PROCESS_FUNCTION",
        }
        for caller in self.functions:
            for target in self.invoked_by(caller):
                (named,) = refs(self.environment(caller)[variables[target]])
                # The function, or its published alias (SAM's <Function>Alias<name>).
                self.assertTrue(named == target or named.startswith(target + "Alias"), caller)

    def bedrock_grants(self, template):
        found = {}
        roles = of_type(template, "AWS::IAM::Role")
        for name in of_type(template, "AWS::Lambda::Function"):
            for statement in statements(roles[name + "Role"]):
                for action in as_list(statement["Action"]):
                    if action.startswith("bedrock:"):
                        found.setdefault(name, []).extend(as_list(statement["Resource"]))
        return found

    def test_bedrock_is_called_only_when_on_by_the_functions_that_run_models_and_only_allowed_models(self):
        self.assertEqual(self.bedrock_grants(self.template), {}, "Bedrock is off by default")
        on = expanded({"Bedrock": "1"})
        grants = self.bedrock_grants(on)
        self.assertEqual(set(grants), {"ChatTurnFunction", "SummarizeFunction"})
        # The model ARNs are built from the list: one foundation model and one profile pattern
        # per allowed model, nothing wider.
        (resource,) = grants["ChatTurnFunction"]
        joined = resource["Fn::Split"][1]["Fn::Join"][1]
        self.assertEqual(joined[0], "arn:aws:bedrock:*::foundation-model/")
        self.assertEqual(joined[1]["Fn::Join"], [",arn:aws:bedrock:*::foundation-model/", {"Ref": "BedrockModels"}])
        self.assertEqual(joined[2], ",arn:aws:bedrock:*:*:inference-profile/*.")
        self.assertEqual(joined[3]["Fn::Join"][1], {"Ref": "BedrockModels"})
        for name in ("ChatTurnFunction", "SummarizeFunction"):
            env = on["Resources"][name]["Properties"]["Environment"]["Variables"]
            self.assertEqual(env["BESTCHAT_BEDROCK_MODELS"]["Fn::Join"][1], {"Ref": "BedrockModels"})


class Storage(ExpandedTemplate):
    def s3_grants(self):
        found = {}
        for name in self.functions:
            for action, resource in self.grants(name):
                if action.startswith("s3:"):
                    text = resource if isinstance(resource, str) else resource.get("Fn::Sub")
                    if text is None:
                        text = "${" + resource["Fn::GetAtt"][0] + ".Arn}"
                    found.setdefault(name, set()).add((action, text))
        return found

    def test_buckets_are_reached_by_prefix(self):
        self.assertEqual(
            self.s3_grants(),
            {
                # Stores modules; compiled code is the compiler's alone to write.
                "ToolsCreateFunction": {
                    ("s3:PutObject", "${BlobBucket.Arn}/tools/*"),
                    ("s3:DeleteObject", "${BlobBucket.Arn}/tools/*"),
                },
                # Runs guests: reads modules and compiled code, writes nothing.
                "ToolExecutorFunction": {
                    ("s3:GetObject", "${BlobBucket.Arn}/tools/*"),
                    ("s3:GetObject", "${BlobBucket.Arn}/compiled/*"),
                    ("s3:ListBucket", "${BlobBucket.Arn}"),
                },
                "ToolCompilerFunction": {
                    ("s3:GetObject", "${BlobBucket.Arn}/tools/*"),
                    ("s3:GetObject", "${BlobBucket.Arn}/compiled/*"),
                    ("s3:PutObject", "${BlobBucket.Arn}/compiled/*"),
                    ("s3:ListBucket", "${BlobBucket.Arn}"),
                },
                # Removes modules no tool uses, their compiled code, and file bytes no file
                # holds.
                "JanitorFunction": {
                    ("s3:ListBucket", "${BlobBucket.Arn}"),
                    ("s3:DeleteObject", "${BlobBucket.Arn}/tools/*"),
                    ("s3:DeleteObject", "${BlobBucket.Arn}/compiled/*"),
                    ("s3:DeleteObject", "${BlobBucket.Arn}/files/*"),
                },
                # Files: each function to the files/ prefix, with the actions it needs. A
                # presigned request carries its signer's rights: the one that presigns
                # uploads may put, the one that presigns downloads may get.
                "FilesCreateFunction": {("s3:PutObject", "${BlobBucket.Arn}/files/*")},
                "FilesCompleteFunction": {
                    ("s3:GetObject", "${BlobBucket.Arn}/files/*"),
                    ("s3:DeleteObject", "${BlobBucket.Arn}/files/*"),
                    ("s3:ListBucket", "${BlobBucket.Arn}"),
                },
                "FilesContentFunction": {("s3:GetObject", "${BlobBucket.Arn}/files/*")},
                "FilesDeleteFunction": {
                    ("s3:DeleteObject", "${BlobBucket.Arn}/files/*"),
                    ("s3:ListBucket", "${BlobBucket.Arn}"),
                },
                "FilesProcessFunction": {
                    ("s3:GetObject", "${BlobBucket.Arn}/files/*"),
                    ("s3:PutObject", "${BlobBucket.Arn}/files/*"),
                    ("s3:ListBucket", "${BlobBucket.Arn}"),
                },
                # Reads what a turn sends of its attachments.
                "ChatTurnFunction": {
                    ("s3:GetObject", "${BlobBucket.Arn}/files/*"),
                    ("s3:ListBucket", "${BlobBucket.Arn}"),
                },
                # A deleted conversation's files go with it.
                "ConversationsDeleteFunction": {
                    ("s3:DeleteObject", "${BlobBucket.Arn}/files/*"),
                    ("s3:ListBucket", "${BlobBucket.Arn}"),
                },
                "WebPublishFunction": {("s3:PutObject", "${WebBucket.Arn}/*")},
            },
        )


class CompiledCode(ExpandedTemplate):
    """Compiled tool code is machine code every executor loads: only the compiler, which runs
    no guest, may write it and vouch for it; the executor may only verify."""

    def test_only_the_compiler_may_tag_and_the_executor_only_verify(self):
        self.assertEqual(self.holders("kms:GenerateMac"), {"ToolCompilerFunction"})
        self.assertEqual(self.holders("kms:VerifyMac"), {"ToolCompilerFunction", "ToolExecutorFunction"})
        for name in ("ToolCompilerFunction", "ToolExecutorFunction"):
            for action, resource in self.grants(name):
                if action.startswith("kms:"):
                    self.assertEqual(resource, {"Fn::GetAtt": ["CompiledCodeKey", "Arn"]}, name)
            (key,) = refs(self.environment(name)["BESTCHAT_COMPILED_CODE_KEY"])
            self.assertEqual(key, "CompiledCodeKey")
        key = self.template["Resources"]["CompiledCodeKey"]["Properties"]
        self.assertEqual((key["KeySpec"], key["KeyUsage"]), ("HMAC_256", "GENERATE_VERIFY_MAC"))

    def test_blobs_keep_what_was_overwritten_for_a_while(self):
        bucket = self.template["Resources"]["BlobBucket"]["Properties"]
        self.assertEqual(bucket["VersioningConfiguration"], {"Status": "Enabled"})
        rules = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
        expiry = rules["ExpireReplacedVersions"]["NoncurrentVersionExpiration"]
        self.assertEqual(expiry["NoncurrentDays"], {"Ref": "BlobNoncurrentDays"})


class Network(ExpandedTemplate):
    def security_groups(self, function):
        config = self.functions[function]["Properties"].get("VpcConfig")
        return refs(config["SecurityGroupIds"]) if config else None

    def test_functions_that_need_no_data_run_outside_the_vpc(self):
        outside = {f for f in self.functions if self.security_groups(f) is None}
        self.assertEqual(outside, OUT_OF_VPC)
        for name in OUT_OF_VPC:
            env = self.environment(name)
            self.assertEqual(env["DATABASE_URL"], "", name)
            self.assertEqual(env["REDIS_URL"], "", name)

    def test_the_database_is_reached_by_the_functions_in_the_vpc(self):
        inside = set(self.functions) - OUT_OF_VPC - CACHE_ONLY
        self.assertEqual(self.holders("rds-db:connect"), inside)
        for name in inside:
            self.assertIn("DatabaseClientSecurityGroup", self.security_groups(name), name)

    def test_the_cache_is_reached_by_all_but_migrate(self):
        users = set(self.functions) - OUT_OF_VPC - {"MigrateFunction"}
        self.assertEqual(self.holders("elasticache:Connect"), users)
        self.assertEqual(self.security_groups("MigrateFunction"), {"DatabaseClientSecurityGroup"})
        self.assertEqual(self.environment("MigrateFunction")["REDIS_URL"], "")
        for name in users - CACHE_ONLY:
            self.assertEqual(
                self.security_groups(name),
                {"DatabaseClientSecurityGroup", "CacheClientSecurityGroup"},
                name,
            )
        for name in CACHE_ONLY:
            self.assertEqual(self.security_groups(name), {"CacheClientSecurityGroup"}, name)
            self.assertEqual(self.environment(name)["DATABASE_URL"], "", name)

    def test_only_client_groups_reach_the_data(self):
        sources = {}
        groups = of_type(self.template, "AWS::EC2::SecurityGroup")
        for name in ("DatabaseProxySecurityGroup", "DatabaseSecurityGroup", "CacheSecurityGroup"):
            for rule in groups[name]["Properties"]["SecurityGroupIngress"]:
                self.assertNotIn("CidrIp", rule, name)
                sources.setdefault(name, set()).update(refs(rule["SourceSecurityGroupId"]))
        for client in ("DatabaseClientSecurityGroup", "CacheClientSecurityGroup"):
            self.assertNotIn("SecurityGroupIngress", groups[client]["Properties"], client)
        self.assertEqual(sources["DatabaseProxySecurityGroup"], {"DatabaseClientSecurityGroup"})
        self.assertEqual(sources["DatabaseSecurityGroup"], {"DatabaseProxySecurityGroup"})
        self.assertEqual(sources["CacheSecurityGroup"], {"CacheClientSecurityGroup"})


class Identity(ExpandedTemplate):
    def routes(self, api):
        """(route key, authorization type) of every route of `api`, in every stack."""
        return {
            (r["Properties"]["RouteKey"], r["Properties"].get("AuthorizationType", "NONE"))
            for r in of_type(self.template, "AWS::ApiGatewayV2::Route").values()
            if refs(r["Properties"]["ApiId"]) == {api}
        }

    def test_both_apis_accept_the_user_pools_tokens_for_the_web_client(self):
        (authorizer,) = [
            a for a in of_type(self.template, "AWS::ApiGatewayV2::Authorizer").values()
            if a["Properties"]["AuthorizerType"] == "JWT"
        ]
        self.assertEqual(refs(authorizer["Properties"]["ApiId"]), {"HttpApi"})
        jwt = authorizer["Properties"]["JwtConfiguration"]
        self.assertEqual(refs(jwt["Audience"]), {"WebClient"})
        self.assertIn("UserPool", refs(jwt["Issuer"]))
        ws = self.environment("WsAuthorizerFunction")
        self.assertEqual(ws["BESTCHAT_JWT_AUDIENCE"], {"Ref": "WebClient"})
        self.assertEqual(ws["BESTCHAT_JWT_ISSUER"], jwt["Issuer"])
        self.assertIn("UserPool", refs(ws["BESTCHAT_JWKS_URL"]))

    def test_every_route_but_health_the_contract_and_stripes_webhook_needs_a_token(self):
        """Stripe signs its webhook instead (the handler checks Stripe-Signature)."""
        routes = of_type(self.template, "AWS::ApiGatewayV2::Route").values()
        http = [r["Properties"] for r in routes if refs(r["Properties"]["ApiId"]) == {"HttpApi"}]
        self.assertGreater(len(http), 25)
        open_routes = {r["RouteKey"] for r in http if r.get("AuthorizationType") != "JWT"}
        self.assertEqual(
            open_routes,
            {"GET /api/health", "GET /api/openapi.json", "POST /api/billing/webhook"},
        )
        for route in http:
            if route.get("AuthorizationType") == "JWT":
                self.assertEqual(refs(route["AuthorizerId"]), {"HttpAuthorizer"}, route["RouteKey"])

    def test_each_route_may_invoke_only_its_function_from_its_own_path(self):
        permissions = of_type(self.template, "AWS::Lambda::Permission")
        for name, route in of_type(self.template, "AWS::ApiGatewayV2::Route").items():
            props = route["Properties"]
            if refs(props["ApiId"]) != {"HttpApi"}:
                continue
            (integration,) = refs(props["Target"])
            (function,) = refs(self.template["Resources"][integration]["Properties"]["IntegrationUri"])
            method, path = props["RouteKey"].split(" ")
            arn_path = method + "/".join("*" if p.startswith("{") else p for p in path.split("/"))
            allowed = [
                p["Properties"]["SourceArn"]["Fn::Sub"]
                for p in permissions.values()
                if refs(p["Properties"]["FunctionName"]) == {function}
            ]
            self.assertEqual(len(allowed), 1, function)
            self.assertTrue(allowed[0].endswith("${HttpApi}/*/" + arn_path), allowed[0])

    def test_cors_allows_the_web_clients_origin_only(self):
        cors = self.template["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]
        self.assertEqual(cors["AllowOrigins"], [{"Fn::Sub": "https://${WebDistribution.DomainName}"}])
        extra = expanded({"ExtraCallbackUrl": "http://localhost:5173"})
        origins = extra["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]["AllowOrigins"]
        self.assertEqual(origins[1], {"Ref": "ExtraCallbackUrl"})
        self.assertNotIn("*", str(origins))


class Deploys(ExpandedTemplate):
    def test_functions_that_use_the_schema_wait_for_migrations(self):
        """Each waits itself, or its whole nested stack does."""
        root = self.template["Stacks"]["root"]["Resources"]
        for name in set(self.functions) - OUT_OF_VPC - CACHE_ONLY - {"MigrateFunction"}:
            if name in root:
                waits = as_list(root[name].get("DependsOn", []))
            else:
                (stack,) = [s for s, t in self.template["Stacks"].items() if name in t["Resources"]]
                waits = as_list(root[stack].get("DependsOn", []))
            self.assertIn("Migrations", waits, name)

    def test_migrations_run_again_for_each_new_migrate_version_once_the_database_is_up(self):
        migrations = self.template["Resources"]["Migrations"]
        self.assertTrue(migrations["Type"].startswith("Custom::"))
        # Served from outside the VPC, so it answers whatever a deletion took down inside it.
        self.assertEqual(refs(migrations["Properties"]["ServiceToken"]), {"MigrateResourceFunction"})
        self.assertIn("MigrateResourceFunction", OUT_OF_VPC)
        (version,) = refs(migrations["Properties"]["CodeVersion"])
        self.assertEqual(self.template["Resources"][version]["Type"], "AWS::Lambda::Version")
        self.assertEqual(
            refs(self.template["Resources"][version]["Properties"]["FunctionName"]),
            {"MigrateFunction"},
        )
        self.assertEqual(
            set(migrations["DependsOn"]), {"DatabaseWriter", "DatabaseProxyTargetGroup"}
        )

    def test_samconfig_has_one_environment_per_stage(self):
        config = tomllib.loads((ROOT / "samconfig.toml").read_text())
        for env, stage in {"default": "dev", "staging": "staging", "prod": "prod"}.items():
            deploy = config[env]["deploy"]["parameters"]
            self.assertIn(f"Environment={stage}", deploy["parameter_overrides"], env)
            self.assertIn("CAPABILITY_AUTO_EXPAND", deploy["capabilities"], env)
            self.assertEqual(config[env]["global"]["parameters"]["template_file"], "infra/template.yaml")
        self.assertTrue(config["prod"]["deploy"]["parameters"]["confirm_changeset"])

    def test_each_environment_names_its_resources_apart_and_reserves_nothing_by_default(self):
        config = tomllib.loads((ROOT / "samconfig.toml").read_text())
        prefixes = set()
        for env in ("default", "staging", "prod"):
            overrides = dict(
                item.split("=", 1)
                for item in config[env]["deploy"]["parameters"]["parameter_overrides"].split()
            )
            prefixes.add(overrides["NamePrefix"])
            # A new account's concurrency quota cannot reserve any: the operator adds these
            # once scripts/preflight reports a quota that can.
            for reserved in ("ChatTurnConcurrency", "ToolExecutorConcurrency", "SummarizeConcurrency"):
                self.assertNotIn(reserved, overrides, env)
        self.assertEqual(len(prefixes), 3)


class Operations(ExpandedTemplate):
    def test_every_function_is_traced_and_logs_json(self):
        for name, function in self.functions.items():
            props = function["Properties"]
            self.assertEqual(props["TracingConfig"], {"Mode": "Active"}, name)
            self.assertEqual(props["LoggingConfig"]["LogFormat"], "JSON", name)

    def test_every_function_has_a_log_group_with_retention_and_an_error_alarm(self):
        groups = of_type(self.template, "AWS::Logs::LogGroup")
        alarms = of_type(self.template, "AWS::CloudWatch::Alarm")
        for name in self.functions:
            short = name.removesuffix("Function")
            group = groups[short + "Logs"]["Properties"]
            self.assertEqual(group["RetentionInDays"], {"Ref": "LogRetentionDays"}, name)
            self.assertIn("DataKey", refs(group["KmsKeyId"]), name)
            self.assertIn(name, refs(group["LogGroupName"]), name)
            alarm = alarms[short + "Errors"]["Properties"]
            self.assertEqual(alarm["MetricName"], "Errors", name)
            self.assertIn(name, refs(alarm["Dimensions"]), name)

    def test_throttles_and_concurrency_are_watched_for_every_function_at_once(self):
        alarms = of_type(self.template, "AWS::CloudWatch::Alarm")
        throttles = alarms["LambdaThrottlesAlarm"]["Properties"]
        self.assertEqual((throttles["Namespace"], throttles["MetricName"]), ("AWS/Lambda", "Throttles"))
        self.assertNotIn("Dimensions", throttles)
        concurrency = alarms["LambdaConcurrencyAlarm"]["Properties"]
        self.assertEqual(concurrency["MetricName"], "ConcurrentExecutions")

    def test_every_alarm_notifies_the_topic(self):
        for name, alarm in of_type(self.template, "AWS::CloudWatch::Alarm").items():
            self.assertEqual(refs(alarm["Properties"]["AlarmActions"]), {"AlarmTopic"}, name)

    def test_the_named_alarms_exist(self):
        alarms = of_type(self.template, "AWS::CloudWatch::Alarm")
        metrics = set()
        for alarm in alarms.values():
            props = alarm["Properties"]
            if "MetricName" in props:
                metrics.add(props["MetricName"])
            for query in props.get("Metrics", []):
                if "MetricStat" in query:
                    metrics.add(query["MetricStat"]["Metric"]["MetricName"])
        for metric in (
            "Duration",
            "ACUUtilization",
            "DatabaseConnectionsBorrowLatency",
            "DatabaseConnectionsCurrentlySessionPinned",
            "BytesUsedForCache",
            "5xx",
            "ApproximateNumberOfMessagesVisible",
            # WebSocket errors, account concurrency, cache throttling.
            "IntegrationError",
            "ExecutionError",
            "ConcurrentExecutions",
            "ThrottledCmds",
        ):
            self.assertIn(metric, metrics)

    def test_async_functions_fail_to_the_queue_within_the_event_age(self):
        # The translator writes the parameter's value in; a value of our own shows it is used.
        template = expanded({"AsyncMaxEventAgeSeconds": 777})
        configs = of_type(template, "AWS::Lambda::EventInvokeConfig")
        for name in ASYNC:
            config = configs[name + "EventInvokeConfig"]["Properties"]
            self.assertEqual(config["MaximumEventAgeInSeconds"], 777, name)
            self.assertEqual(config["MaximumRetryAttempts"], 0, name)
            destination = config["DestinationConfig"]["OnFailure"]["Destination"]
            self.assertEqual(refs(destination), {"AsyncFailureQueue"}, name)
        self.assertEqual(self.holders("sqs:SendMessage"), ASYNC)

    def test_runaways_can_be_capped_and_nothing_is_reserved_by_default(self):
        caps = {
            "ToolExecutorFunction": "ToolExecutorConcurrency",
            "ChatTurnFunction": "ChatTurnConcurrency",
            "SummarizeFunction": "SummarizeConcurrency",
        }
        for name in caps:
            self.assertNotIn("ReservedConcurrentExecutions", self.functions[name]["Properties"])
        capped = expanded({p: "50" for p in caps.values()})["Resources"]
        for name, parameter in caps.items():
            reserved = capped[name]["Properties"]["ReservedConcurrentExecutions"]
            self.assertEqual(reserved, {"Ref": parameter}, name)

    def test_metrics_are_written_as_emf(self):
        global_env = source()["Globals"]["Function"]["Environment"]["Variables"]
        self.assertEqual(global_env["BESTCHAT_METRICS"], "emf")


if __name__ == "__main__":
    unittest.main()


class Room(unittest.TestCase):
    """CloudFormation allows 500 resources per stack. With twice today's functions (each with
    its role, route, permission, log group and alarms), every stack stays under 60 % of it."""

    LIMIT = 500

    def test_every_stack_has_room_for_twice_its_functions(self):
        for environment in ("dev", "prod"):
            template = expanded({"Environment": environment})
            for name, stack in template["Stacks"].items():
                resources = stack["Resources"]
                functions = [
                    k.removesuffix("Function")
                    for k, v in resources.items()
                    if v["Type"] == "AWS::Lambda::Function"
                ]
                theirs = [k for k in resources if any(k.startswith(f) for f in functions)]
                doubled = len(resources) + len(theirs)
                self.assertLessEqual(doubled, 0.6 * self.LIMIT, f"{environment} {name}: {doubled}")


class ComesUp(ExpandedTemplate):
    """What would keep a first deploy from coming up, or a delete from finishing."""

    def test_the_proxy_target_group_waits_for_the_writer(self):
        group = self.template["Resources"]["DatabaseProxyTargetGroup"]
        self.assertIn("DatabaseWriter", as_list(group.get("DependsOn", [])))

    def test_custom_resources_answer_in_time_from_outside_the_vpc(self):
        customs = {k: v for k, v in self.template["Resources"].items() if v["Type"].startswith("Custom::")}
        self.assertEqual(set(customs), {"Migrations", "WebClientFiles"})
        for name, resource in customs.items():
            props = resource["Properties"]
            (function,) = refs(props["ServiceToken"])
            self.assertIn(function, OUT_OF_VPC, name)
            timeout = self.functions[function]["Properties"]["Timeout"]
            self.assertLess(timeout, props["ServiceTimeout"], name)
            self.assertLessEqual(props["ServiceTimeout"], 3600, name)
        # migrate itself must finish before the resource's function stops waiting for it.
        migrate = self.functions["MigrateFunction"]["Properties"]["Timeout"]
        self.assertLess(migrate, self.functions["MigrateResourceFunction"]["Properties"]["Timeout"])

    def test_rules_use_rule_functions_only(self):
        allowed = {"Fn::And", "Fn::Contains", "Fn::EachMemberEquals", "Fn::EachMemberIn",
                   "Fn::Equals", "Fn::Not", "Fn::Or", "Fn::RefAll", "Fn::ValueOf",
                   "Fn::ValueOfAll", "Ref", "Condition"}

        def functions_in(node):
            if isinstance(node, dict):
                for k, v in node.items():
                    if k.startswith("Fn::") or k in ("Ref", "Condition"):
                        yield k
                    yield from functions_in(v)
            elif isinstance(node, list):
                for v in node:
                    yield from functions_in(v)

        rules = source()["Rules"]
        self.assertTrue(rules)
        self.assertLessEqual(set(functions_in(rules)), allowed)

    def test_names_come_from_a_lower_case_prefix(self):
        pattern = re.compile(source()["Parameters"]["NamePrefix"]["AllowedPattern"])
        for good in ("bestchat", "bestchat-dev", "b2-prod"):
            self.assertRegex(good, pattern)
        # Upper case, and the hyphens the proxy's, cache's and users' names refuse.
        for bad in ("BestChat", "bestchat-", "best--chat", "-bestchat", "b" * 21, "2chat"):
            self.assertNotRegex(bad, pattern)
        text = (ROOT / "infra" / "template.yaml").read_text()
        for line in text.splitlines():
            if "AWS::StackName" in line:
                self.assertRegex(line.strip(), r"^(Comment|DisplayName):", line)

    def test_bedrock_models_are_ids_never_wildcards(self):
        # Each id becomes an IAM resource ARN: a "*" would grant every model.
        parameter = source()["Parameters"]["BedrockModels"]
        pattern = re.compile(parameter["AllowedPattern"])
        for model in parameter["Default"].split(","):
            self.assertRegex(model, pattern)
        for bad in ("*", "anthropic.*", "anthropic.claude/../*", "amazon.nova-pro-v1:0 "):
            self.assertNotRegex(bad, pattern)

    def test_the_alarm_topic_key_lets_cloudwatch_and_budgets_publish(self):
        topic = self.template["Resources"]["AlarmTopic"]["Properties"]
        self.assertEqual(refs(topic["KmsMasterKeyId"]), {"AlarmKey"})
        statements = self.template["Resources"]["AlarmKey"]["Properties"]["KeyPolicy"]["Statement"]
        (publish,) = [s for s in statements if s.get("Sid") == "AlarmsMayBePublished"]
        self.assertEqual(set(publish["Principal"]["Service"]), {"cloudwatch.amazonaws.com", "budgets.amazonaws.com"})
        self.assertIn("kms:GenerateDataKey*", publish["Action"])
        self.assertIn("aws:SourceAccount", publish["Condition"]["StringEquals"])

    def test_websocket_access_logs_have_the_account_role_they_need(self):
        resources = self.template["Resources"]
        self.assertIn("ApiGatewayAccount", resources)
        stage = resources["WebSocketStage"]["Properties"]
        self.assertIn("ApiGatewayAccount", refs(stage["Description"]), "the stage waits for the role")
        self.assertIn("AccessLogSettings", stage)
        for value, logs in (("exists", True), ("none", False)):
            other = expanded({"ApiGatewayAccountRole": value})["Resources"]
            self.assertFalse("ApiGatewayAccount" in other, value)
            self.assertEqual("AccessLogSettings" in other["WebSocketStage"]["Properties"], logs)

    def test_the_lambda_build_fails_without_the_web_client(self):
        profile = tomllib.loads((ROOT / "infra" / "lambda-profile.toml").read_text())
        self.assertEqual(profile["env"]["BESTCHAT_REQUIRE_WEB"], "1")


class Wallet(ExpandedTemplate):
    """Nobody spends what the operator did not allow."""

    def test_sign_up_is_closed_unless_the_operator_opens_it(self):
        pool = self.template["Resources"]["UserPool"]["Properties"]
        self.assertIs(pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"], True)
        # Federated sign-ins are refused by the trigger too.
        self.assertEqual(refs(pool["LambdaConfig"]["PreSignUp"]), {"SignUpCheckFunction"})
        env = self.environment("SignUpCheckFunction")
        self.assertEqual(env["SIGN_UP"], {"Ref": "SignUp"})
        permission = self.template["Resources"]["SignUpCheckPermission"]["Properties"]
        self.assertEqual(permission["Principal"], "cognito-idp.amazonaws.com")
        self.assertEqual(refs(permission["SourceArn"]), {"UserPool"})
        domains = expanded({"SignUp": "domains", "SignUpEmailDomains": "example.com"})
        pool = domains["Resources"]["UserPool"]["Properties"]
        self.assertIs(pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"], False)
        self.assertIn("PreSignUp", pool["LambdaConfig"])
        pool = expanded({"SignUp": "open"})["Resources"]["UserPool"]["Properties"]
        self.assertNotIn("PreSignUp", pool.get("LambdaConfig", {}))

    def test_spend_has_a_budget_that_alarms(self):
        budget = self.template["Resources"]["SpendBudget"]["Properties"]
        self.assertEqual(budget["Budget"]["BudgetLimit"]["Amount"], {"Ref": "MonthlyBudgetUsd"})
        for notification in budget["NotificationsWithSubscribers"]:
            self.assertEqual(refs(notification["Subscribers"][0]["Address"]), {"AlarmTopic"})
        self.assertFalse("SpendBudget" in expanded({"MonthlyBudgetUsd": "0"})["Resources"])

    def test_waf_is_the_operators_option(self):
        self.assertFalse("SignInWebAcl" in self.template["Resources"])
        on = expanded({"Waf": "true"})["Resources"]
        association = on["SignInWebAclAssociation"]["Properties"]
        self.assertEqual(refs(association["ResourceArn"]), {"UserPool"})
        rule = on["SignInWebAcl"]["Properties"]["Rules"][0]["Statement"]["RateBasedStatement"]
        self.assertEqual(rule["AggregateKeyType"], "IP")


class DatabaseUsers(ExpandedTemplate):
    """The functions connect as a user that may touch the data only; the schema's owner is
    migrate's alone."""

    def test_only_migrate_connects_as_the_schemas_owner(self):
        owner = {f for f in self.functions if "MigrateDatabaseConnectPolicy" in self.attached(f)}
        self.assertEqual(owner, {"MigrateFunction"})
        policies = self.managed
        app = policies["DatabaseConnectPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
        self.assertTrue(app["Resource"]["Fn::Sub"][0].endswith("/bestchat_app"))
        mig = policies["MigrateDatabaseConnectPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
        self.assertTrue(mig["Resource"]["Fn::Sub"][0].endswith("/bestchat"))
        for name in set(self.functions) - OUT_OF_VPC - CACHE_ONLY:
            url = self.environment(name)["DATABASE_URL"]["Fn::Sub"]
            user = url.split("//", 1)[1].split("@")[0]
            self.assertEqual(user, "bestchat" if name == "MigrateFunction" else "bestchat_app", name)

    def test_the_proxy_logs_in_as_each_with_its_own_secret(self):
        auth = self.template["Resources"]["DatabaseProxy"]["Properties"]["Auth"]
        secrets = [refs(a["SecretArn"]) for a in auth]
        self.assertEqual(secrets, [{"DatabaseCluster"}, {"AppDatabaseSecret"}])
        self.assertTrue(all(a["IAMAuth"] == "REQUIRED" for a in auth))
        migrations = self.template["Resources"]["Migrations"]["Properties"]
        self.assertEqual(migrations["AppUser"], "bestchat_app")
        self.assertIn("{{resolve:secretsmanager:${AppDatabaseSecret}", migrations["AppPassword"]["Fn::Sub"])


def _in_every_environment():
    """Each test class on the expanded template runs again for every samconfig.toml environment
    (dev, staging, prod): what holds for the defaults must hold as each is deployed."""
    import grants

    classes = [c for c in list(globals().values())
               if isinstance(c, type) and issubclass(c, ExpandedTemplate) and c is not ExpandedTemplate]
    for env, parameters in grants.environments().items():
        if env == "every-option":
            continue
        for cls in classes:
            name = f"{cls.__name__}In_{env}"
            globals()[name] = type(name, (cls,), {"parameters": parameters})


_in_every_environment()
