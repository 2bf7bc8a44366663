"""Writes the templates as CloudFormation will create them (Fn::ForEach expanded, the SAM
translator run, conditions decided) as JSON, one file per stack, for checkov: what it checks is
then the roles, permissions and functions that will exist, not the SAM shorthand.

    <infra venv>/bin/python infra/tests/translated.py OUT_DIR
"""

import json
import pathlib
import sys

import grants
from expand import expanded

# What each file shows: the defaults, and every optional grant turned on.
VARIANTS = {"default": {}, "every-option": grants.EVERY_OPTION}


def write(out):
    out.mkdir(parents=True, exist_ok=True)
    for variant, parameters in VARIANTS.items():
        for stack, template in expanded(parameters)["Stacks"].items():
            kept = {k: v for k, v in template.items() if k != "ConditionValues"}
            (out / f"{variant}-{stack}.json").write_text(json.dumps(kept, indent=1, default=str))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    write(pathlib.Path(sys.argv[1]))
