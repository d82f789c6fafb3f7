"""genai_helpers: the plumbing behind the course's notebooks.

    import genai_helpers as gh
    env = gh.setup(seed=0)      # seed, device, quick mode, one line about the environment
    mnist = gh.load_mnist()     # MNIST on the device (full, or the offline sample)
    history = gh.fit(step, mnist.train_x, state={...}, epochs=..., batch_size=...)

Modules: runtime, data, train, checkpoint, losses, vae, plot, results.
"""
__version__ = "0.1.0"

from . import checkpoint, data, losses, plot, results, runtime, train, vae  # noqa: E402
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint  # noqa: E402
from .data import DataError, load_mnist  # noqa: E402
from .results import save_results  # noqa: E402
from .runtime import device, is_offline, is_quick, pick, setup  # noqa: E402
from .train import History, adam, fit  # noqa: E402
