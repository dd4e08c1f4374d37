"""The README documents every setting (after datasette's test_docs.py)."""

from conftest import ROOT

from qa.config import Settings


def test_every_setting_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [f"QA_{name.upper()}" for name in Settings.model_fields if f"QA_{name.upper()}" not in readme]
    assert not missing, f"settings missing from README.md: {missing}"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_line = next(line for line in readme.splitlines() if "pytest" in line and "pip install" in line)
    command = test_line.split(". .venv/bin/activate && ", 1)[1]
    assert command in ci
