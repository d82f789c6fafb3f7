"""Command line for instructors and maintainers: `python -m genai_helpers <command>`; USAGE below
lists the commands (what --help prints, in the language of the course's messages)."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .i18n import ENGLISH, LANGUAGES, N_, _

USAGE = N_("""Command line for instructors and maintainers: python -m genai_helpers <command>

    doctor                                       is this machine ready? each problem with its fix
    execute [NOTEBOOK ...] [--quick] [--out DIR]   re-run notebooks (default: all, in place)
    student [--lang zh] [--out DIR]              the student version (default build/student/, zh: build/student/zh/)
    prepare [MODEL ...] [--quick]                train and cache the course's models (default: all)
    train MODEL [--quick] [--checkpoints DIR] [--json FILE]
                                                 train one model as its chapter does; under torchrun
                                                 on all its processes, e.g.
                                                 torchrun --standalone --nproc_per_node=2 -m genai_helpers train dcgan
    bench [--steps N] [--models vae dcgan seq2seq] [--epochs] [--time-to-quality] [--json FILE]
                                                 course loop vs textbook loop, side by side
    translations [--lang zh] [--check]           update the catalogs, build notebooks/zh/, report
""")

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def _notebooks(names) -> list[Path]:
    if not names:
        return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    out = []
    for name in names:
        p = Path(name)
        if not p.exists():
            matches = sorted(NOTEBOOKS.glob(f"{name}*.ipynb"))
            if len(matches) != 1:
                sys.exit(_("no single notebook matches {name!r} in {folder}").format(name=name, folder=NOTEBOOKS))
            p = matches[0]
        out.append(p)
    return out


def execute(args) -> int:
    """Run notebooks top to bottom with a fresh kernel; write them back with their outputs."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    os.environ["GENAI_QUICK"] = "1" if args.quick else "0"
    failed = 0
    for path in _notebooks(args.notebooks):
        nb = nbformat.read(path, as_version=4)
        nb.metadata["kernelspec"] = KERNELSPEC  # JupyterLab and Voila then start it without asking
        t = time.perf_counter()
        print(_("{name}: running ({mode}) ...").format(
            name=path.name, mode=_("quick mode") if args.quick else _("full mode")), flush=True)
        client = NotebookClient(nb, timeout=args.timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        try:
            client.execute()
            status = _("ok")
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as e:
            status = _("FAILED: {error}").format(error=str(e).strip().splitlines()[-1][:200])
            failed += 1
        target = Path(args.out) / path.name if args.out else path
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        print(_("{name}: {status} in {seconds:.0f} s -> {target}").format(
            name=path.name, status=status, seconds=time.perf_counter() - t, target=target), flush=True)
    return 1 if failed else 0


def student(args) -> int:
    """Write the student version of the course: solutions replaced by stubs with hints."""
    from .student import make_student_version

    english = args.lang == ENGLISH
    out = Path(args.out or REPO / "build" / "student" / ("" if english else args.lang))
    paths = make_student_version(NOTEBOOKS if english else NOTEBOOKS / args.lang, out)
    for p in paths:
        print(_("wrote {path}").format(path=p))
    print(_("{n} student notebooks in {folder}; copy the folder to your students (they also need this package: "
            "pip install -r requirements.txt)").format(n=len(paths), folder=out))
    return 0


def prepare(args) -> int:
    """Train (or load) every model the chapters use, so that class starts from the cache."""
    from .prepare import prepare as run

    if args.quick:
        os.environ["GENAI_QUICK"] = "1"
    try:
        run(args.models)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    return 0


def train(args) -> int:
    """Train one model (the checkpoint its chapter and `prepare` read), on one process or under torchrun."""
    import json

    from .prepare import train as run

    if args.quick:
        os.environ["GENAI_QUICK"] = "1"
    if args.checkpoints:
        os.environ["GENAI_CHECKPOINTS"] = args.checkpoints
    try:
        row = run(args.model)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    if args.json and row is not None:
        Path(args.json).write_text(json.dumps(row, indent=1))
    return 0


def bench(args) -> int:
    """Throughput of the course loop against the textbook loop, and the quality each reached."""
    import json

    from .bench import epoch_seconds, run
    from .data import load_mnist

    numbers = run(args.steps, args.models, races=args.time_to_quality)
    if args.epochs:
        numbers["epoch_seconds"] = epoch_seconds(load_mnist())
        for r in numbers["epoch_seconds"]:
            print(_("{model:32s} one epoch of {what}: {seconds:.2f} s").format(
                model=r["model"], what=r["what"], seconds=r["seconds"]))
    if args.json:
        Path(args.json).write_text(json.dumps(numbers, indent=1, default=float))
    return 0


def translations(args) -> int:
    """Update the translation catalogs from the English, build the edition's notebooks, report."""
    from .translations import run

    return run(REPO, args.lang, check=args.check)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genai_helpers", description=_(USAGE),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("doctor", help=_("check versions, device, data source and widgets"))
    d.set_defaults(func=lambda a: 0 if __import__("genai_helpers.doctor").doctor.doctor() else 1)
    p = sub.add_parser("execute", help=_("re-run notebooks and save their outputs"))
    p.add_argument("notebooks", nargs="*", help=_("paths or name prefixes such as 02 (default: all)"))
    p.add_argument("--quick", action="store_true", help=_("quick mode (GENAI_QUICK=1)"))
    p.add_argument("--out", help=_("write executed notebooks into this folder instead of in place"))
    p.add_argument("--timeout", type=int, default=1800, help=_("seconds per cell"))
    p.set_defaults(func=execute)
    st = sub.add_parser("student", help=_("write the student version of the notebooks"))
    st.add_argument("--lang", default=ENGLISH, choices=LANGUAGES,
                    help=_("the edition: en (notebooks/) or zh (notebooks/zh/, the Chinese student version)"))
    st.add_argument("--out", help=_("output folder (default build/student/, for zh build/student/zh/)"))
    st.set_defaults(func=student)
    pr = sub.add_parser("prepare", help=_("train and cache every model the course uses"))
    from .prepare import MODELS

    pr.add_argument("models", nargs="*", help=_("some of: {models}").format(models=", ".join(MODELS)))
    pr.add_argument("--quick", action="store_true", help=_("the quick-mode models (what GENAI_QUICK=1 loads)"))
    pr.set_defaults(func=prepare)
    t = sub.add_parser("train", help=_("train one model as its chapter does (under torchrun: data parallel)"))
    t.add_argument("model", help=_("one of: {models}").format(models="vae (vae16), " + ", ".join(MODELS)))
    t.add_argument("--quick", action="store_true", help=_("the quick-mode model (what GENAI_QUICK=1 loads)"))
    t.add_argument("--checkpoints",
                   help=_("folder for the checkpoint (default: data/checkpoints or $GENAI_CHECKPOINTS)"))
    t.add_argument("--json", help=_("also write what was trained, how long it took and the all-reduce traffic here"))
    t.set_defaults(func=train)
    b = sub.add_parser("bench", help=_("course loop vs textbook loop: samples/s, ratio and quality"))
    b.add_argument("--steps", type=int, help=_("steps per round (3 rounds per loop; default 60, quick 8)"))
    b.add_argument("--models", nargs="+", default=["vae", "dcgan", "seq2seq"], choices=["vae", "dcgan", "seq2seq"])
    b.add_argument("--epochs", action="store_true",
                   help=_("also time one epoch of 60,000 images (VAE, DCGAN) and 100,000 date pairs (Seq2Seq)"))
    b.add_argument("--time-to-quality", action="store_true",
                   help=_("also train each loop from scratch to the chapter's bar: seconds to quality"))
    b.add_argument("--json", help=_("also write the numbers to this file"))
    b.set_defaults(func=bench)

    t = sub.add_parser("translations", help=_("update the catalogs from the English, build notebooks/zh/, report"))
    t.add_argument("--lang", default="zh", choices=[lang for lang in LANGUAGES if lang != ENGLISH])
    t.add_argument("--check", action="store_true",
                   help=_("write nothing; exit 1 if anything is missing, out of date or not rebuilt (CI)"))
    t.set_defaults(func=translations)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
