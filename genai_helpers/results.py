"""Each chapter's measured numbers: a small printed table and data/results/<notebook>.json."""
from __future__ import annotations

import json
import math

from .i18n import _
from .runtime import data_dir
from .session import env


def _plain(v):
    """JSON-ready value: tensors and NumPy scalars become numbers, NaN becomes None."""
    if hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def save_results(notebook: str, **values) -> None:
    """Print `values` as a table and write them, with `quick` and `data_source`, as JSON."""
    e = env()
    record = {**{k: _plain(v) for k, v in values.items()}, "quick": e.quick,
              "data_source": values.get("data_source", e.data_source)}
    width = max(len(k) for k in record)
    print(_("Results of {notebook}").format(notebook=notebook))
    for k, v in record.items():
        shown = f"{v:.4g}" if isinstance(v, float) else (json.dumps(v, ensure_ascii=False)
                                                       if isinstance(v, (dict, list)) else v)
        print(f"  {k:<{width}}  {shown}")
    path = data_dir() / "results" / f"{notebook}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False))
    tmp.replace(path)
    print(f"  -> {path}")
