"""Test settings for `pytest` (unit tests and the notebooks): quick mode, no live plots, and a
throwaway checkpoint folder per session, set before any notebook kernel starts.

`pytest` runs in quick mode unless GENAI_QUICK is set; `GENAI_QUICK=0 pytest notebooks` executes
the notebooks at full size.
"""
import os
import tempfile

import pytest

os.environ.setdefault("GENAI_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("GENAI_CHECKPOINTS", tempfile.mkdtemp(prefix="genai-checkpoints-"))

# nbval does not execute the Chinese edition (notebooks/zh/): its code cells are the English ones
# but for `lang="zh"` in the setup call (tests/test_i18n.py proves it), so running them again would
# only double the suite's time; its Chinese messages are exercised by unit tests (tests/test_i18n.py).
collect_ignore = ["notebooks/zh"]


@pytest.hookimpl(trylast=True)  # after -k / -m have deselected: only browser tests that will run count
def pytest_collection_modifyitems(config, items):
    """Browser tests last: by then the notebooks have trained and cached the demos' models.

    When the browser tests are in the session, they run every demo top to bottom twice (JupyterLab,
    Voila) and fail on any error output; nbval's own run of the demos (notebooks/demos/) would be a
    third run of the same cells, so it is deselected (about 30 s). Without a browser the browser
    tests skip at import and nbval runs the demos as before."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/test_browser.py"))
    demos = [item for item in items if item.nodeid.startswith("notebooks/demos/")]
    if demos and any(item.nodeid.startswith("tests/test_browser.py::test_demo_in_") for item in items):
        config.hook.pytest_deselected(items=demos)
        items[:] = [item for item in items if item not in demos]
