"""Stochastic weight averaging (Izmailov et al., 2018) for the skorch MLP
(``models.<name>.swa_fraction``): the net ends with the mean of its weights over the last
epochs, which sits nearer the centre of a wide minimum than any one epoch's weights.
"""

from __future__ import annotations

import torch
from skorch.callbacks import Callback
from torch.optim.swa_utils import AveragedModel, update_bn

# The public batch-norm layers update_bn resets (a lazy one turns into its plain class at its first
# forward, so a trained net holds only these).
BATCH_NORMS = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d, torch.nn.SyncBatchNorm)


class WeightAverage(Callback):
    """Average the module's parameters at the end of each of the last ``epochs`` epochs
    of every ``fit``/``partial_fit`` call (``net.max_epochs`` epochs), then hold the average."""

    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.average_ = None
        self.seen_ = 0

    def on_epoch_end(self, net, **kwargs):
        self.seen_ += 1
        if self.seen_ <= net.max_epochs - self.epochs:
            return
        if self.average_ is None:
            self.average_ = AveragedModel(net.module_)  # a copy that holds no snapshot yet
        self.average_.update_parameters(net.module_)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        if self.average_ is None:  # stopped before the averaging began
            return
        with torch.no_grad():
            for param, mean in zip(net.module_.parameters(), self.average_.module.parameters(), strict=True):
                param.copy_(mean)
        self.average_ = None  # not pickled with the net
        # Batch-norm statistics were gathered under other weights: recomputed for the average.
        has_batch_norm = any(isinstance(m, BATCH_NORMS) for m in net.module_.modules())
        if X is not None and has_batch_norm:  # no copy of the training rows for a net without it
            rows, size = torch.as_tensor(X, dtype=torch.float32), net.batch_size
            with torch.no_grad():
                update_bn((rows[i : i + size] for i in range(0, len(rows), size)), net.module_, device=net.device)
