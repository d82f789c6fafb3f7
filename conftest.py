"""Test settings for `pytest` (unit tests and the notebooks): quick mode, no live plots, and a
throwaway checkpoint folder per session, set before any notebook kernel starts.

`pytest` runs in quick mode unless GENAI_QUICK is set; `GENAI_QUICK=0 pytest notebooks` executes
the notebooks at full size.
"""
import os
import tempfile

os.environ.setdefault("GENAI_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("GENAI_CHECKPOINTS", tempfile.mkdtemp(prefix="genai-checkpoints-"))

# nbval does not execute the Chinese edition (notebooks/zh/): its code cells are the English ones
# but for `lang="zh"` in the setup call (tests/test_i18n.py proves it), so running them again would
# only double the suite's time; its Chinese messages are exercised by unit tests (tests/test_i18n.py).
collect_ignore = ["notebooks/zh"]


def pytest_collection_modifyitems(items):
    """Browser tests last: by then the notebooks have trained and cached the demos' models."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/test_browser.py"))
