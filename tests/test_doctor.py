"""`python -m genai_helpers doctor`: exits 0 on a ready machine, names the data source, and lists
what can go wrong exactly as the README does."""
import subprocess
import sys
from pathlib import Path

from genai_helpers.doctor import TROUBLES


def test_doctor_exits_0_and_names_the_data_source():
    out = subprocess.run([sys.executable, "-m", "genai_helpers", "doctor"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "data " in out.stdout and "MNIST" in out.stdout
    assert "What can go wrong" in out.stdout


def test_the_readme_lists_every_trouble_the_doctor_knows():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    for what, fix in TROUBLES:
        assert f"**{what}**: {fix}" in readme, what
