"""genai_helpers: the plumbing behind the course's notebooks.

    import genai_helpers as gh
    env = gh.setup(seed=0)      # seed, device, quick mode, one line about the environment
    mnist = gh.load_mnist()     # MNIST on the device (full, or the offline sample)
    history = gh.fit(step, mnist.train_x, state={...}, epochs=..., batch_size=...)

Every module is also reachable as an attribute, imported on first use: `gh.vae.VAE`,
`gh.plot.image_grid`, ... (one module per idea; CONTRIBUTING.md at the repository root maps them).
"""
import importlib

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .data import DataError, load_mnist
from .hints import hint
from .i18n import _  # noqa: F401  gh._("...") in notebook code: the message in the session's language
from .results import save_results
from .runtime import __version__, is_offline, is_quick, pick
from .session import device, setup
from .train import History, adam, fit

__all__ = ["__version__", "CheckpointError", "DataError", "History", "adam", "device", "fit", "hint", "is_offline",
           "is_quick", "load_checkpoint", "load_mnist", "pick", "save_checkpoint", "save_results", "setup"]


def __getattr__(name: str):
    """Import submodules on first use, so `gh.<module>` works without listing them here."""
    if name.startswith("_"):
        raise AttributeError(name)
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
