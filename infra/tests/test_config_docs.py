"""Every environment variable the code reads is a row of the README's configuration table: a
setting nobody can find is a setting nobody can trust."""

import pathlib
import re
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
# Set by the platform, not by an operator: Cargo for build scripts, Lambda for functions.
PROVIDED = {"CARGO", "CARGO_MANIFEST_DIR", "RUSTC", "OUT_DIR", "AWS_LAMBDA_FUNCTION_NAME"}
READ = re.compile(
    r'(?:env\.\w+|env::var(?:_os)?)\(\s*"([A-Z][A-Z0-9_]+)"'
    # A variable read through a named constant (`OPERATION_VARIABLE`).
    r'|const \w*VARIABLE\w*: &str = "([A-Z][A-Z0-9_]+)"'
    # A settings field read from the environment (`#[serde(rename = "NAME")]`).
    r'|rename = "([A-Z][A-Z0-9_]+)"'
)


def read_by_the_code():
    found = {}
    for root in ("shared", "functions", "infra/local"):
        for path in (ROOT / root).rglob("*.rs"):
            parts = path.relative_to(ROOT).parts
            if "target" in parts or "wasm" in parts or "tests" in parts:
                continue
            text = re.sub(r"#\[cfg\(test\)\]\s*mod tests\s*\{.*", "", path.read_text(), flags=re.S)
            for names in READ.findall(text):
                for name in filter(None, names):
                    found.setdefault(name, str(path.relative_to(ROOT)))
    return found


class ConfigurationTable(unittest.TestCase):
    def test_every_variable_read_is_documented(self):
        readme = (ROOT / "README.md").read_text()
        table = readme[readme.index("## Configuration"):readme.index("## Deploy")]
        documented = set(re.findall(r"`([A-Z][A-Z0-9_]{3,})`", table))
        read = read_by_the_code()
        self.assertGreater(len(read), 100, "the scan finds the code's reads")
        missing = {name: where for name, where in read.items() if name not in documented | PROVIDED}
        self.assertEqual(missing, {}, "add a row to the README's Configuration table")


if __name__ == "__main__":
    unittest.main()
