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


def pytest_collection_modifyitems(items):
    """Browser tests last: by then the notebooks have trained and cached the demos' models."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/test_browser.py"))
