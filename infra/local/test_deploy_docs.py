"""The README's parameter table names every parameter of template.yaml with its default.

Run: .venv/bin/python -m unittest discover -s infra/local -p 'test_*.py'
"""

from __future__ import annotations

import re
import unittest
from pathlib import Path

from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]


class DeployDocsTest(unittest.TestCase):
    def test_every_template_parameter_is_in_the_readme_with_its_default(self) -> None:
        template = cfn_yaml.load(str(ROOT / "template.yaml"))
        readme = (ROOT / "README.md").read_text()
        rows = {
            m["name"]: m["default"]
            for m in re.finditer(r"^\| `(?P<name>\w+)` \| (?P<default>[^|]*?) \|", readme, re.M)
        }
        missing, wrong = [], []
        for name, spec in template["Parameters"].items():
            default = spec.get("Default")
            want = "(empty)" if default in (None, "") else f"`{default}`"
            if name not in rows:
                missing.append(name)
            elif rows[name] != want:
                wrong.append(f"{name}: README says {rows[name]}, the template {want}")
        self.assertEqual(missing, [], "parameters the README does not list")
        self.assertEqual(wrong, [], "defaults the README states wrongly")


if __name__ == "__main__":
    unittest.main()
