"""The skorch side of the MLP: a ``NeuralNetRegressor`` that learns on a standardised
log price, its binned-head variant, the batch iterator and the callbacks.

skorch's own training loop runs unchanged; this module only plugs into its public
params (``iterator_train``/``iterator_valid``, ``callbacks``) and documented hooks
(``fit``/``partial_fit``, ``get_loss``, ``predict``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from skorch import NeuralNetRegressor
from skorch.callbacks import Callback, LRScheduler
from skorch.utils import to_tensor
from torch import nn
from torch.utils.data import Subset

from houseprices.util.files import pickled

# Rows per forward pass when nothing is learned (validation, prediction): one pass.
EVAL_BATCH = 16384


def _float_tensor(a, device) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.to(device=device, dtype=torch.float32)
    return torch.as_tensor(np.asarray(a, dtype=np.float32), device=device)


def _columns(dataset):
    """X and y of a skorch ``Dataset``, or of the ``Subset`` that ``ValidSplit`` makes of one."""
    if isinstance(dataset, Subset):
        X, y = _columns(dataset.dataset)
        rows = np.asarray(dataset.indices)
        return X[rows], (None if y is None else y[rows])
    return dataset.X, dataset.y


class TensorBatches:
    """Batches sliced from float32 tensors already in memory: no per-row Dataset indexing
    and no collate step, which dominate skorch's time on small tabular data. skorch builds
    one per fit through its ``iterator_train``/``iterator_valid`` params.

    Training batches are reshuffled every epoch; a last batch of a single row is dropped
    (it would break BatchNorm; those rows are seen in other epochs)."""

    def __init__(self, dataset, batch_size: int, shuffle: bool = False, device: str = "cpu"):
        X, y = _columns(dataset)
        self.X = _float_tensor(X, device)
        self.y = None if y is None else _float_tensor(y, device)
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self):
        n, size = len(self.X), self.batch_size
        full = math.ceil(n / size)
        return full - 1 if self.shuffle and full > 1 and n % size == 1 else full

    def __iter__(self):
        size = self.batch_size
        if self.shuffle:
            order = torch.randperm(len(self.X), device=self.X.device)
            X, y = self.X[order], (None if self.y is None else self.y[order])
        else:
            X, y = self.X, self.y
        for start in range(0, size * len(self), size):
            yield X[start : start + size], (None if y is None else y[start : start + size])


class MaxNorm(Callback):
    """Project each unit's incoming weight vector back onto the ball of radius c after
    every optimizer step (max-norm constraint)."""

    def __init__(self, max_norm: float):
        self.max_norm = max_norm

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if not training:
            return
        with torch.no_grad():
            for layer in net.module_.modules():
                if isinstance(layer, nn.Linear):
                    torch.renorm(layer.weight, p=2, dim=0, maxnorm=self.max_norm, out=layer.weight)


class StopOnNonFinite(Callback):
    """Stop a diverging fit at the end of the epoch where its loss stops being finite."""

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        for key in ("train_loss", "valid_loss"):
            value = row.get(key)
            if value is not None and not math.isfinite(value):
                raise FloatingPointError(
                    f"{key} became {value} at epoch {row['epoch']}; try a lower learning rate "
                    "(lr), gradient clipping (grad_clip) or batch_norm"
                )


class HoldoutLoss(Callback):
    """Per-epoch loss on rows the fit never trains on (a CV fold's validation rows), in
    the units of ``train_loss``: the learning curve that shows over- and under-fitting.

    Set through ``set_params(callbacks__holdout__X=..., callbacks__holdout__y=...)`` with
    preprocessed features and log prices; without them it does nothing.
    """

    def __init__(self, X=None, y=None):
        self.X = X
        self.y = y

    def on_epoch_end(self, net, **kwargs):
        if self.X is None or self.y is None:
            return
        z = (np.asarray(self.y, dtype=np.float64).reshape(-1, 1) - net.target_mean_) / net.target_scale_
        # skorch's forward: eval mode (no dropout, batch-norm running stats), no gradients.
        y_pred = net.forward(np.ascontiguousarray(self.X, dtype=np.float32), device=net.device)
        net.history.record("holdout_loss", float(net.get_loss(y_pred, torch.as_tensor(z, dtype=torch.float32))))


@dataclass(eq=False)
class LRFactor:
    """Learning-rate multiplier per epoch: linear warm-up, then step/exponential/cosine.

    With ``hold_from`` (weight averaging's constant phase) the factor is ``hold`` from
    that epoch on, and cosine anneals from 1 to ``hold`` by then instead of to 0 at the end."""

    schedule: str
    epochs: int
    step_size: int
    gamma: float
    warmup: int
    hold_from: int | None = None
    hold: float = 0.0

    def __call__(self, epoch: int) -> float:
        if self.hold_from is not None and epoch >= self.hold_from:
            return self.hold
        if epoch < self.warmup:
            return (epoch + 1) / (self.warmup + 1)
        t = epoch - self.warmup
        if self.schedule == "step":
            return self.gamma ** (t // self.step_size)
        if self.schedule == "exponential":
            return self.gamma**t
        if self.schedule == "cosine":
            end = self.epochs if self.hold_from is None else self.hold_from
            return self.hold + (1 - self.hold) * 0.5 * (1 + math.cos(math.pi * t / max(1, end - self.warmup)))
        return 1.0


class OneCycle(LRScheduler):
    """torch's OneCycleLR stepped every batch, its steps per epoch counted from the rows
    this fit really trains on (after the internal validation split)."""

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        train, _ = net.get_split_datasets(X, y)
        self.steps_per_epoch = len(net.get_iterator(train, training=True))
        super().on_train_begin(net, X=X, y=y, **kwargs)


class MLPRegressor(NeuralNetRegressor):
    """skorch regressor for tabular float features and a 1-d log-price target.

    ``fit`` standardises the target (and ``predict`` undoes it) so every config learns on
    a unit-scale target; ``l1`` adds an L1 penalty on the weights to the training loss;
    ``random_state`` seeds init, dropout and batch order. With ``embed_columns`` (a
    column-name prefix), the columns of a DataFrame X so named are category codes: their
    positions and code counts go to the module (``categorical``, ``cardinalities``).
    """

    def __init__(self, *args, l1=0.0, random_state=0, embed_columns=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.l1 = l1
        self.random_state = random_state
        self.embed_columns = embed_columns

    def _set_inputs(self, X) -> None:
        """The module's input width (and code columns) from the first fit's X."""
        params = {"module__n_inputs": np.shape(X)[1], "module__n_outputs": self.n_outputs_}
        if self.embed_columns:
            names = [str(c) for c in getattr(X, "columns", [])]
            positions = [i for i, c in enumerate(names) if c.startswith(self.embed_columns)]
            if not positions:
                raise ValueError(f"embed_columns={self.embed_columns!r}: X has no column so named")
            codes = np.asarray(X.iloc[:, positions], dtype=np.float64)
            params.update(module__categorical=positions, module__cardinalities=[int(np.nanmax(c)) + 1 for c in codes.T])
        self.set_params(**params)

    def _fit_target(self, y: np.ndarray) -> None:
        """Target scaling (and the module's output width) from the rows of the first fit."""
        self.target_mean_ = float(y.mean())
        self.target_scale_ = float(y.std()) or 1.0
        self.n_outputs_ = 1

    @staticmethod
    def _arrays(X, y):
        return np.ascontiguousarray(X, dtype=np.float32), np.asarray(y, dtype=np.float64).reshape(-1)

    def fit(self, X, y=None, **fit_params):
        """Train from scratch on (X, log price): target scaling from these rows, seeded."""
        frame, (X, y) = X, self._arrays(X, y)
        self._fit_target(y)
        torch.manual_seed(self.random_state)
        self._set_inputs(frame)
        return super().fit(X, y, **fit_params)  # initialises, then calls partial_fit

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """More epochs on (X, log price), standardised with the first fit's scaling."""
        frame, (X, y) = X, self._arrays(X, y)
        if not hasattr(self, "target_mean_"):
            self._fit_target(y)
            self._set_inputs(frame)
        z = ((y - self.target_mean_) / self.target_scale_).astype(np.float32).reshape(-1, 1)
        return super().partial_fit(X, z, classes, **fit_params)

    def __getstate__(self):
        """skorch's state, its torch attributes pickled to the same bytes for the same weights
        (skorch pickles them plainly, which names each tensor's storage by its memory address)."""
        state = super().__getstate__()
        torch_attributes = {
            k: v for k, v in self.__dict__.items() if k.startswith(tuple(self.cuda_dependent_attributes_))
        }
        state["__cuda_dependent_attributes__"] = pickled(torch_attributes)
        return state

    def get_loss(self, y_pred, y_true, X=None, training=False):
        loss = super().get_loss(y_pred, y_true, X=X, training=training)
        if self.l1 > 0 and training:
            loss = loss + self.l1 * sum(
                p.abs().sum() for n, p in self.module_.named_parameters() if n.endswith("weight") and p.dim() > 1
            )
        return loss

    def _standardised(self, output: np.ndarray) -> np.ndarray:
        """Per-row prediction on the standardised scale from the module's output."""
        return output.reshape(-1).astype(np.float64)

    def predict(self, X):
        output = self.predict_proba(np.ascontiguousarray(X, dtype=np.float32))
        return self._standardised(output) * self.target_scale_ + self.target_mean_


class BinnedMLPRegressor(MLPRegressor):
    """``head: binned``: a softmax over quantile bins of the standardised target, trained
    with cross-entropy; ``predict`` returns the predicted distribution's mean.

    With ``nn.CrossEntropyLoss`` as criterion, skorch's ``predict_proba`` applies the
    softmax: it gives the per-row probabilities over the bins.
    """

    def __init__(self, *args, criterion=nn.CrossEntropyLoss, n_bins=32, **kwargs):
        super().__init__(*args, criterion=criterion, **kwargs)
        self.n_bins = n_bins

    def _fit_target(self, y: np.ndarray) -> None:
        super()._fit_target(y)
        z = (y - self.target_mean_) / self.target_scale_
        edges = np.unique(np.quantile(z, np.linspace(0, 1, self.n_bins + 1)))
        if len(edges) < 3:
            raise ValueError("head='binned' needs a target with at least 3 distinct quantiles")
        self.bin_edges_ = edges.astype(np.float32)
        self.bin_centers_ = ((edges[:-1] + edges[1:]) / 2).astype(np.float32)
        # Class k holds targets in (edge k, edge k+1]; the outer bins are open-ended.
        self.inner_edges_ = torch.as_tensor(self.bin_edges_[1:-1])
        self.n_outputs_ = len(self.bin_centers_)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        z = to_tensor(y_true, device=self.device).reshape(-1).contiguous()
        classes = torch.bucketize(z, self.inner_edges_.to(z.device))
        return super().get_loss(y_pred, classes, X=X, training=training)

    def _standardised(self, output: np.ndarray) -> np.ndarray:
        return output.astype(np.float64) @ self.bin_centers_.astype(np.float64)

    def bin_values(self) -> np.ndarray:
        """Bin centres in log price."""
        return self.bin_centers_.astype(np.float64) * self.target_scale_ + self.target_mean_

    def bin_edges(self) -> np.ndarray:
        """Bin edges in log price."""
        return self.bin_edges_.astype(np.float64) * self.target_scale_ + self.target_mean_

    def predict_interval(self, X, coverage=0.8):
        """Central ``coverage`` interval of the predicted distribution, in log price. Each
        bin's mass is spread uniformly over the bin, the same distribution whose mean
        ``predict`` returns, so the quantiles are interpolated."""
        if not 0 < coverage < 1:
            raise ValueError(f"coverage must be in (0, 1), got {coverage}")
        probs = self.predict_proba(np.ascontiguousarray(X, dtype=np.float32)).astype(np.float64)
        cdf = np.cumsum(probs, axis=1)
        cdf = np.hstack([np.zeros((len(cdf), 1)), cdf / cdf[:, -1:]])
        edges = self.bin_edges()
        tail = (1 - coverage) / 2
        lo = np.array([np.interp(tail, row, edges) for row in cdf])
        hi = np.array([np.interp(1 - tail, row, edges) for row in cdf])
        return lo, hi
