"""The Gamma test: an estimate of the noise variance of a data set from its nearest neighbours.

Used for a user's fixed arrays (an npz source), whose noise variance R_t is not known.
"""

import math

import numpy as np

GAMMA_NEIGHBOURS = 10  # the Gamma test regresses over the 1st..10th nearest neighbours
GAMMA_MAX_ROWS = 20_000  # ... on at most this many rows (a seeded subset; ~5 s CPU)


def gamma_test(X: np.ndarray, Y: np.ndarray, k: int = GAMMA_NEIGHBOURS) -> float:
    """The Gamma test's estimate of the noise variance per output (Stefansson, Koncar & Jones 1997).

    For y = g(x) + eps with smooth g, half the mean squared difference of the outputs of the p-th
    nearest neighbours, gamma(p), grows linearly with their mean squared input distance delta(p);
    the intercept of the line fitted through p = 1..k is the estimate of Var eps (at distance 0).
    """
    import torch  # here: the stages' configurations import this module without torch

    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    deltas, gammas = [], []
    for start in range(0, len(Xt), 2000):
        block = torch.cdist(Xt[start : start + 2000], Xt)
        block[torch.arange(len(block)), torch.arange(start, start + len(block))] = math.inf
        dist, index = block.topk(k, largest=False)
        deltas.append(dist**2)
        gammas.append(((Yt[start : start + 2000, None, :] - Yt[index]) ** 2).mean(-1) / 2)
    delta, gamma = torch.cat(deltas).mean(0).numpy(), torch.cat(gammas).mean(0).numpy()
    intercept, _ = np.linalg.lstsq(np.stack([np.ones(k), delta], axis=1), gamma, rcond=None)[0]
    return max(float(intercept), 0.0)
