"""Expands infra/template.yaml the way CloudFormation does before it creates anything:
AWS::LanguageExtensions (Fn::ForEach), then the SAM translator (AWS::Serverless-2016-10-31).
The tests read the expanded template: real IAM roles, Lambda functions and alarms."""

import copy
import json
import logging
import os
import pathlib
import re

from samcli.yamlhelper import yaml_parse
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The translator records usage metrics nobody publishes here, and warns about each one.
logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)
TEMPLATE = ROOT / "infra" / "template.yaml"


class NoManagedPolicies(ManagedPolicyLoader):
    """The template names managed policies by ARN only; nothing is looked up in IAM."""

    def __init__(self):
        pass

    def load(self):
        return {}


def source():
    return yaml_parse(TEMPLATE.read_text())


def _substitute(node, name, value):
    if isinstance(node, dict):
        return {
            _substitute(k, name, value): _substitute(v, name, value) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_substitute(v, name, value) for v in node]
    if isinstance(node, str):
        return node.replace("${" + name + "}", value).replace("&{" + name + "}", value)
    return node


def expand_for_each(template):
    """Fn::ForEach::<loop>: [identifier, [values], {key template: resource}] in Resources."""
    resources = {}
    for key, value in template["Resources"].items():
        if not key.startswith("Fn::ForEach::"):
            resources[key] = value
            continue
        identifier, values, body = value
        for item in values:
            for name, resource in _substitute(body, identifier, item).items():
                assert name not in resources, f"{name} is declared twice"
                resources[name] = resource
    out = copy.deepcopy(template)
    out["Resources"] = resources
    out["Transform"] = "AWS::Serverless-2016-10-31"
    # What `sam package` writes in place of the local code directory.
    out["Globals"]["Function"]["CodeUri"] = "s3://artifacts/bestchat.zip"
    return out


def nested_sources(template):
    """The nested stacks' templates by their resource name (`Location` is a path beside the
    root template, as `sam build` and `sam package` read it)."""
    return {
        name: yaml_parse((TEMPLATE.parent / r["Properties"]["Location"]).read_text())
        for name, r in template["Resources"].items()
        if isinstance(r, dict) and r.get("Type") == "AWS::Serverless::Application"
    }


def _with_urls(template):
    """What `sam package` does to a nested stack's local path: an S3 URL in its place."""
    out = copy.deepcopy(template)
    for r in out["Resources"].values():
        if isinstance(r, dict) and r.get("Type") == "AWS::Serverless::Application":
            r["Properties"]["Location"] = "https://s3.amazonaws.com/artifacts/" + r["Properties"]["Location"]
    return out


def _sub_name(value):
    """`X` or `X.Attr` when a root value is a plain Ref or GetAtt (usable inside a Sub)."""
    if isinstance(value, dict) and list(value) == ["Ref"]:
        return value["Ref"]
    if isinstance(value, dict) and list(value) == ["Fn::GetAtt"]:
        target = value["Fn::GetAtt"]
        return ".".join(target) if isinstance(target, list) else target
    return None


def _resolve(node, given):
    """A nested stack's template with its parameters replaced by what the root gives them, so
    every grant and reference reads as the root's resource it is."""
    if isinstance(node, dict):
        if list(node) == ["Ref"] and node["Ref"] in given:
            return copy.deepcopy(given[node["Ref"]])
        if list(node) == ["Fn::Sub"] and isinstance(node["Fn::Sub"], str):
            text = node["Fn::Sub"]
            for name, value in given.items():
                plain = _sub_name(value)
                if plain:
                    text = text.replace("${" + name + "}", "${" + plain + "}")
            return {"Fn::Sub": text}
        return {k: _resolve(v, given) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, given) for v in node]
    return node


def _parameter_values(template, given):
    """Every parameter's value: what was given, else its default (lists split as CloudFormation does)."""
    values = {}
    for name, spec in template.get("Parameters", {}).items():
        value = str(given.get(name, spec.get("Default", "")))
        values[name] = value.split(",") if spec["Type"] == "CommaDelimitedList" else value
    values["AWS::Region"] = os.environ["AWS_DEFAULT_REGION"]
    return values


def _truth(node, values, conditions):
    """A condition's value, as CloudFormation computes it."""
    if isinstance(node, dict):
        (fn, arg), = node.items()
        if fn == "Fn::Equals":
            # CloudFormation compares what it reads as strings.
            a, b = (_truth_value(x, values) for x in arg)
            return str(a) == str(b)
        if fn == "Fn::Not":
            return not _truth(arg[0], values, conditions)
        if fn == "Fn::And":
            return all(_truth(x, values, conditions) for x in arg)
        if fn == "Fn::Or":
            return any(_truth(x, values, conditions) for x in arg)
        if fn == "Condition":
            return conditions[arg]
    raise ValueError(f"not a condition: {node}")


def _truth_value(node, values):
    if isinstance(node, dict) and list(node) == ["Ref"]:
        return values[node["Ref"]]
    return node


NO_VALUE = {"Ref": "AWS::NoValue"}


def _choose(node, conditions):
    """The value with every Fn::If decided and AWS::NoValue taken out."""
    if isinstance(node, dict):
        if list(node) == ["Fn::If"]:
            name, yes, no = node["Fn::If"]
            return _choose(yes if conditions[name] else no, conditions)
        out = {}
        for k, v in node.items():
            chosen = _choose(v, conditions)
            if chosen != NO_VALUE:
                out[k] = chosen
        return out
    if isinstance(node, list):
        return [c for c in (_choose(v, conditions) for v in node) if c != NO_VALUE]
    return node


def evaluated(template, given):
    """The template as CloudFormation would create it for these parameter values: resources
    whose condition is false left out, every Fn::If decided."""
    values = _parameter_values(template, given)
    conditions = {}
    for name, node in template.get("Conditions", {}).items():
        conditions[name] = _truth(node, values, conditions)
    out = dict(template)
    out["Resources"] = {
        k: _choose(r, conditions)
        for k, r in template["Resources"].items()
        if conditions.get(r.get("Condition"), True)
    }
    out["ConditionValues"] = conditions
    return out


_EXPANDED = {}


def expanded(parameters=None, edit=None):
    """`expand` for the given parameters, computed once per set (a copy each time: callers
    may change what they get)."""
    if edit is not None:
        return expand(parameters, edit)
    key = json.dumps(parameters or {}, sort_keys=True)
    if key not in _EXPANDED:
        _EXPANDED[key] = expand(parameters)
    return copy.deepcopy(_EXPANDED[key])


def expand(parameters=None, edit=None):
    """The template as CloudFormation would create it, for the given parameter values (the rest
    at their defaults, conditions decided): the root and every nested stack, their resources in
    one `Resources` (nested parameters replaced by the root's values), and each stack's own
    under `Stacks`. `edit(stack, source)`, if given, changes a stack's source first ("root" or
    the nested stack's resource name): how a test tries a change to the template."""
    # The translator fills AWS::Region in from the environment; no AWS call is made.
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    edit = edit or (lambda _stack, template: template)
    root_source = edit("root", source())
    given = parameters or {}
    root = evaluated(
        transform(_with_urls(expand_for_each(root_source)), given, NoManagedPolicies()), given
    )
    stacks = {"root": root}
    merged = dict(root["Resources"])
    for name, nested in nested_sources(root_source).items():
        nested = edit(name, copy.deepcopy(nested))
        nested["Globals"]["Function"]["CodeUri"] = "s3://artifacts/bestchat.zip"
        translated = transform(nested, {}, NoManagedPolicies())
        given = root["Resources"][name]["Properties"].get("Parameters", {})
        stacks[name] = translated
        for key, resource in _resolve(translated["Resources"], given).items():
            assert key not in merged, f"{key} is declared in two stacks"
            merged[key] = resource
    out = dict(root)
    out["Resources"] = merged
    out["Stacks"] = stacks
    return out


def of_type(template, kind):
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def statements(role):
    """Every inline statement of an IAM role, each with a list of actions and of resources."""
    found = []
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            found.append(statement)
    return found


def as_list(value):
    return value if isinstance(value, list) else [value]


def refs(value):
    """Every resource a CloudFormation value names (Ref, GetAtt and ${...} in Sub)."""
    names = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref" and isinstance(v, str):
                names.add(v)
            elif k == "Fn::GetAtt":
                names.add(v[0] if isinstance(v, list) else v.split(".")[0])
            elif k == "Fn::Sub":
                text = v if isinstance(v, str) else v[0]
                names.update(n.split(".")[0] for n in re.findall(r"\$\{([^}!]+)\}", text))
                if isinstance(v, list):
                    names.update(refs(v[1]))
            else:
                names.update(refs(v))
    elif isinstance(value, list):
        for v in value:
            names.update(refs(v))
    return names
