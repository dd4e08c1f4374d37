"""Every setting is documented (after datasette's test_docs.py), the README leads to that table, and CI runs the
README's test command."""

import subprocess

from conftest import ROOT

from qa.config import Settings


def test_every_setting_is_in_the_configuration_table() -> None:
    table = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [f"QA_{name.upper()}" for name in Settings.model_fields if f"`QA_{name.upper()}`" not in table]
    assert not missing, f"settings missing from docs/configuration.md: {missing}"
    assert "(docs/configuration.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_ci_runs_the_readme_test_command_and_it_installs_system_packages() -> None:
    """.ci/run extracts the README's second command; that command installs Chromium and Tesseract itself."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    command = readme[readme.index(next(line for line in readme if line.startswith("# 2."))) + 1]
    extracted = subprocess.run(
        ["awk", "/^# 2\\./ { getline; print; exit }", "README.md"], cwd=ROOT, capture_output=True, text=True
    )
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert extracted.stdout.strip() == command and "awk '/^# 2\\./ { getline; print; exit }' README.md" in ci
    for package in ("chromium", "tesseract-ocr", "pip install torch==2.13.0", "pip install -e '.[dev]'"):
        assert package in command
    assert command.endswith("&& pytest")
