"""Where tensors live, for every compute module.

``derivations/`` and ``experiments/`` both stand on ``report/`` (checks, savers, progress bars) and
never on each other, so the one helper they share lives here rather than in either of them.
"""

import torch


def device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
