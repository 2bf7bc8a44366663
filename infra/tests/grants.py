"""The grant inventory: every grant the deployed stacks hold, computed from the expanded
template (roles with their trust, inline and managed policies; standalone policies; every
resource policy: buckets, keys, Lambda permissions, topics, queues, log and secret policies,
the proxy's and the cache's users), for each environment of samconfig.toml and with every
optional feature on. `infra/grants.json` is the reviewed copy; `test_grants` fails on any
difference, so a new action, a wider ARN, a dropped condition or a new policy resource shows
up in review as a change to that file.

After a reviewed change to the template:
    <infra venv>/bin/python infra/tests/grants.py --write
"""

import json
import sys
import tomllib

from expand import ROOT, expanded

INVENTORY = ROOT / "infra" / "grants.json"

# What each resource type that holds or gives access contributes (its properties, minus what
# only names or describes it). A type in neither table fails the tests until it is classified.
GRANT_TYPES = {
    "AWS::IAM::Role": ("AssumeRolePolicyDocument", "Policies", "ManagedPolicyArns", "PermissionsBoundary"),
    "AWS::IAM::ManagedPolicy": ("PolicyDocument", "Roles", "Users", "Groups"),
    "AWS::IAM::Policy": ("PolicyDocument", "Roles", "Users", "Groups"),
    "AWS::IAM::RolePolicy": ("PolicyDocument", "RoleName"),
    "AWS::S3::BucketPolicy": ("Bucket", "PolicyDocument"),
    "AWS::KMS::Key": ("KeyPolicy", "KeyUsage", "KeySpec"),
    "AWS::Lambda::Permission": ("Action", "FunctionName", "Principal", "SourceArn", "SourceAccount", "PrincipalOrgID", "FunctionUrlAuthType"),
    "AWS::SNS::TopicPolicy": ("Topics", "PolicyDocument"),
    "AWS::SQS::QueuePolicy": ("Queues", "PolicyDocument"),
    "AWS::Logs::ResourcePolicy": ("PolicyDocument",),
    "AWS::SecretsManager::ResourcePolicy": ("SecretId", "ResourcePolicy"),
    "AWS::RDS::DBProxy": ("Auth", "RoleArn", "RequireTLS"),
    "AWS::ElastiCache::User": ("AccessString", "AuthenticationMode", "Engine", "UserName"),
    "AWS::ElastiCache::UserGroup": ("UserIds",),
    "AWS::ApiGateway::Account": ("CloudWatchRoleArn",),
    "AWS::ApiGatewayV2::Route": ("AuthorizationType", "AuthorizerId", "RouteKey"),
    "AWS::ApiGatewayV2::Authorizer": ("AuthorizerType", "IdentitySource", "JwtConfiguration", "AuthorizerUri"),
    "AWS::CloudFront::OriginAccessControl": ("OriginAccessControlConfig",),
    "AWS::Cognito::UserPool": ("AdminCreateUserConfig", "LambdaConfig"),
    "AWS::Lambda::EventInvokeConfig": ("DestinationConfig",),
}
# Types that give no one access to anything (their access is what a grant above names).
NO_GRANT_TYPES = {
    "AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Deployment", "AWS::ApiGatewayV2::Integration",
    "AWS::ApiGatewayV2::Stage", "AWS::ApiGatewayV2::RouteResponse", "AWS::ApiGatewayV2::IntegrationResponse",
    "AWS::Budgets::Budget", "AWS::CloudFormation::Stack", "AWS::CloudFront::Distribution",
    "AWS::CloudFront::ResponseHeadersPolicy", "AWS::CloudWatch::Alarm", "AWS::Cognito::UserPoolClient",
    "AWS::Cognito::UserPoolDomain", "AWS::Cognito::UserPoolGroup", "AWS::Cognito::UserPoolIdentityProvider",
    "AWS::DynamoDB::Table", "AWS::EC2::EIP", "AWS::EC2::FlowLog", "AWS::EC2::InternetGateway",
    "AWS::EC2::NatGateway", "AWS::EC2::Route", "AWS::EC2::RouteTable", "AWS::EC2::SecurityGroup",
    "AWS::EC2::SecurityGroupEgress", "AWS::EC2::SecurityGroupIngress", "AWS::EC2::Subnet",
    "AWS::EC2::SubnetRouteTableAssociation", "AWS::EC2::VPC", "AWS::EC2::VPCEndpoint",
    "AWS::EC2::VPCGatewayAttachment", "AWS::ElastiCache::ServerlessCache", "AWS::Events::Rule",
    "AWS::KMS::Alias", "AWS::Lambda::Alias", "AWS::Lambda::Function", "AWS::Lambda::Version",
    "AWS::Logs::LogGroup", "AWS::RDS::DBCluster", "AWS::RDS::DBInstance", "AWS::RDS::DBProxyTargetGroup",
    "AWS::RDS::DBSubnetGroup", "AWS::S3::Bucket", "AWS::SNS::Subscription", "AWS::SNS::Topic",
    "AWS::SQS::Queue", "AWS::SecretsManager::Secret", "AWS::WAFv2::WebACL",
    "AWS::WAFv2::WebACLAssociation", "AWS::CloudFormation::CustomResource",
    "Custom::Migrations", "Custom::WebClient", "AWS::Scheduler::Schedule",
}

# Every optional grant turned on, on top of prod's settings.
EVERY_OPTION = {
    "Bedrock": "1",
    "Waf": "true",
    "SignUp": "domains",
    "SignUpEmailDomains": "example.com",
    "GoogleClientId": "google-client",
    "OidcIssuer": "https://issuer.example.com",
    "OidcClientId": "oidc-client",
    "AlarmEmail": "ops@example.com",
    "InterfaceEndpoints": "true",
    "NatGateways": "2",
    "ToolExecutorConcurrency": "10",
    "ChatTurnConcurrency": "10",
    "SummarizeConcurrency": "2",
}


def environments():
    """Parameter values per environment: samconfig.toml's, and prod with every option on."""
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    found = {}
    for env, section in config.items():
        if not isinstance(section, dict):
            continue
        overrides = section.get("deploy", {}).get("parameters", {}).get("parameter_overrides")
        if overrides is not None:
            found[env] = dict(item.split("=", 1) for item in overrides.split())
    found["every-option"] = {**found["prod"], **EVERY_OPTION}
    return found


def unclassified(template):
    return sorted(
        {r["Type"] for r in template["Resources"].values()} - set(GRANT_TYPES) - NO_GRANT_TYPES
    )


def inventory(template):
    """Each grant-bearing resource: its type and what of it grants."""
    found = {}
    for name, resource in sorted(template["Resources"].items()):
        fields = GRANT_TYPES.get(resource["Type"])
        if fields is None:
            continue
        properties = resource.get("Properties", {})
        kept = {f: properties[f] for f in fields if f in properties}
        if resource["Type"] == "AWS::ApiGatewayV2::Route" and "AuthorizationType" not in kept:
            kept["AuthorizationType"] = "NONE"
        found[name] = {"Type": resource["Type"], **kept}
    return found


def compute(edit=None):
    """The inventory per environment, identical ones stored once (`same_as`)."""
    out = {}
    for env, parameters in environments().items():
        grants = inventory(expanded(parameters, edit))
        twin = next((e for e, v in out.items() if v == grants), None)
        out[env] = {"same_as": twin} if twin else grants
    return out


def resolved(stored, env):
    entry = stored[env]
    return stored[entry["same_as"]] if "same_as" in entry else entry


def render(value):
    return json.dumps(value, indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: {sys.argv[0]} --write   (rewrites {INVENTORY.relative_to(ROOT)})")
    INVENTORY.write_text(render(compute()))
    print(f"wrote {INVENTORY.relative_to(ROOT)}")
