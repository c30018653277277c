"""Model factory: one function turns a ``models.<name>`` entry of params.yaml into a
scikit-learn Pipeline (preprocessing + regressor) that predicts log prices.

The MLP is a skorch ``NeuralNetRegressor`` subclass; each lecture technique is a
constructor parameter, a small callback, or a focused hook (``get_loss``,
``get_iterator``, ``train_step``), never a copied training loop.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from skorch import NeuralNetRegressor
from skorch.callbacks import Callback, EarlyStopping, GradientNormClipping, LRScheduler
from skorch.dataset import Dataset
from skorch.history import History
from skorch.utils import TeeGenerator
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import ElasticNet, Lasso, Ridge
from sklearn.pipeline import Pipeline
from torch import nn

from .config import (
    ElasticNetConfig,
    FeaturesConfig,
    HGBConfig,
    KernelRidgeConfig,
    LassoConfig,
    MLPConfig,
    ModelConfig,
    RidgeConfig,
)
from .member_features import build_member_preprocessor

logger = logging.getLogger(__name__)

ACTIVATIONS = {
    "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU,
    "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
}
LEAKY_SLOPE = 0.01  # nn.LeakyReLU's default negative slope
# Rows per forward pass when nothing is learned (validation, prediction): one pass.
EVAL_BATCH = 16384


class GaussianNoise(nn.Module):
    """Additive input noise at training time only (a data-side regulariser)."""

    def __init__(self, std: float):
        super().__init__()
        self.std = std

    def forward(self, x):
        if self.training and self.std > 0:
            return x + torch.randn_like(x) * self.std
        return x


def init_weights(module: nn.Module, scheme: str, std: float = 0.01, bias: float = 0.0,
                 activation: str = "relu") -> None:
    """Initialise every Linear layer; zero weights are refused (symmetry never breaks).

    Xavier/Glorot keeps gain 1 (Var = 2 / (fan_in + fan_out)); He/Kaiming scales by the
    activation's gain (2 for ReLU, 2 / (1 + 0.01^2) for leaky ReLU, (5/3)^2 for tanh...):
    Var = gain^2 / fan_in.
    """
    if scheme == "zeros":
        raise ValueError("all-zero weight init: every hidden unit would compute the same function "
                         "and receive the same gradient, so symmetry is never broken")
    if scheme not in ("xavier_normal", "xavier_uniform", "he_normal", "he_uniform", "normal"):
        raise ValueError(f"unknown init scheme {scheme!r}")
    nonlinearity = {"leaky_relu": "leaky_relu", "tanh": "tanh", "sigmoid": "sigmoid"}.get(activation, "relu")
    slope = LEAKY_SLOPE if activation == "leaky_relu" else 0.0
    for layer in module.modules():
        if not isinstance(layer, nn.Linear):
            continue
        w = layer.weight
        if scheme == "xavier_normal":
            nn.init.xavier_normal_(w)
        elif scheme == "xavier_uniform":
            nn.init.xavier_uniform_(w)
        elif scheme == "he_normal":
            nn.init.kaiming_normal_(w, a=slope, nonlinearity=nonlinearity)
        elif scheme == "he_uniform":
            nn.init.kaiming_uniform_(w, a=slope, nonlinearity=nonlinearity)
        else:
            nn.init.normal_(w, 0.0, std)
        if layer.bias is not None:
            nn.init.constant_(layer.bias, bias)


class MLP(nn.Module):
    """Fully connected net: [Linear -> (BatchNorm) -> activation -> (Dropout)] * depth -> Linear."""

    def __init__(self, n_inputs=1, n_outputs=1, hidden=(128,), activation="relu", batch_norm=False,
                 dropout=0.0, input_dropout=0.0, input_noise=0.0, init="he_normal", init_std=0.01,
                 bias_init=0.0):
        super().__init__()
        rates = list(dropout) if isinstance(dropout, (list, tuple)) else [dropout] * len(hidden)
        if len(rates) != len(hidden):
            raise ValueError(f"dropout has {len(rates)} rates but hidden has {len(hidden)} layers")
        layers: list[nn.Module] = []
        if input_noise > 0:
            layers.append(GaussianNoise(input_noise))
        if input_dropout > 0:
            layers.append(nn.Dropout(input_dropout))
        width = n_inputs
        for units, rate in zip(hidden, rates):
            layers.append(nn.Linear(width, units))
            if batch_norm:
                layers.append(nn.BatchNorm1d(units))
            layers.append(ACTIVATIONS[activation](LEAKY_SLOPE) if activation == "leaky_relu"
                          else ACTIVATIONS[activation]())
            if rate > 0:
                layers.append(nn.Dropout(rate))  # inverted dropout; identity in eval mode
            width = units
        layers.append(nn.Linear(width, n_outputs))
        self.layers = nn.Sequential(*layers)
        init_weights(self, init, init_std, bias_init, activation)

    def forward(self, x):
        return self.layers(x)


def _float_tensor(a, device) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.to(device=device, dtype=torch.float32)
    return torch.as_tensor(np.asarray(a, dtype=np.float32), device=device)


class TensorBatches:
    """Batches sliced from float32 tensors already in memory: no per-row Dataset indexing
    and no collate step, which dominate skorch's time on small tabular data.

    Training batches are reshuffled every epoch; a last batch of a single row is dropped
    (it would break BatchNorm; those rows are seen in other epochs)."""

    def __init__(self, dataset, batch_size: int, shuffle: bool, device: str = "cpu"):
        self.X = _float_tensor(dataset.X, device)
        self.y = None if dataset.y is None else _float_tensor(dataset.y, device)
        self.batch_size = batch_size
        self.shuffle = shuffle

    @staticmethod
    def count(n: int, batch_size: int, shuffle: bool) -> int:
        """Batches one pass over ``n`` rows yields."""
        full = math.ceil(n / batch_size)
        return full - 1 if shuffle and full > 1 and n % batch_size == 1 else full

    def __len__(self):
        return self.count(len(self.X), self.batch_size, self.shuffle)

    def __iter__(self):
        n, bs = len(self.X), self.batch_size
        if self.shuffle:
            order = torch.randperm(n, device=self.X.device)
            X, y = self.X[order], (None if self.y is None else self.y[order])
        else:
            X, y = self.X, self.y
        for start in range(0, bs * len(self), bs):
            yield X[start:start + bs], (None if y is None else y[start:start + bs])


class SeededSplit:
    """Internal validation split (early stopping, plateau schedule, curves), seeded so
    the same params always hold out the same rows."""

    def __init__(self, fraction: float, seed: int):
        self.fraction = fraction
        self.seed = seed

    def n_valid(self, n: int) -> int:
        return min(n - 1, max(1, int(round(self.fraction * n))))

    def __call__(self, dataset, y=None, **kwargs):
        n = len(dataset.X)
        order = np.random.default_rng(self.seed).permutation(n)
        valid, train = order[:self.n_valid(n)], order[self.n_valid(n):]
        return Dataset(dataset.X[train], dataset.y[train]), Dataset(dataset.X[valid], dataset.y[valid])


class BatchHistory(History):
    """skorch's History with per-batch writes that skip its generic indexing."""

    def new_batch(self):
        list.__getitem__(self, -1)["batches"].append({})

    def record_batch(self, attr, value):
        list.__getitem__(self, -1)["batches"][-1][attr] = value


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
                    "(lr), gradient clipping (grad_clip) or batch_norm")


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
        X = torch.as_tensor(np.ascontiguousarray(self.X, dtype=np.float32), device=net.device)
        z = (np.asarray(self.y, dtype=np.float64).reshape(-1, 1) - net.target_mean_) / net.target_scale_
        net._set_training(False)  # dropout and batch norm in eval mode; the next step resets it
        with torch.no_grad():
            loss = net.get_loss(net.infer(X), torch.as_tensor(z, dtype=torch.float32, device=net.device))
        net.history.record("holdout_loss", float(loss))


class LRFactor:
    """Learning-rate multiplier per epoch: linear warm-up, then step/exponential/cosine."""

    def __init__(self, schedule: str, epochs: int, step_size: int, gamma: float, warmup: int):
        self.schedule, self.epochs, self.step_size, self.gamma, self.warmup = (
            schedule, epochs, step_size, gamma, warmup)

    def __call__(self, epoch: int) -> float:
        if epoch < self.warmup:
            return (epoch + 1) / (self.warmup + 1)
        t = epoch - self.warmup
        if self.schedule == "step":
            return self.gamma ** (t // self.step_size)
        if self.schedule == "exponential":
            return self.gamma ** t
        if self.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * t / max(1, self.epochs - self.warmup)))
        return 1.0


class OneCycle(LRScheduler):
    """torch's OneCycleLR stepped every batch, its steps per epoch counted from the rows
    this fit really trains on (after the internal validation split)."""

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.steps_per_epoch = net.train_batches_per_epoch(len(X))
        super().on_train_begin(net, X=X, y=y, **kwargs)


def _log_info(message: str) -> None:
    logger.info(message)


class MLPRegressor(NeuralNetRegressor):
    """skorch regressor for tabular float features and a 1-d log-price target.

    ``fit`` standardises the target (and undoes it in ``predict``) so every config learns
    on a unit-scale target; ``head='binned'`` learns a softmax over quantile bins of the
    target instead and predicts its expected value. ``l1`` adds an L1 penalty in
    ``get_loss``; ``random_state`` seeds init, dropout and batch order.
    """

    def __init__(self, *args, l1=0.0, head="regression", n_bins=32, random_state=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.l1 = l1
        self.head = head
        self.n_bins = n_bins
        self.random_state = random_state

    # -- data --------------------------------------------------------------------
    def get_iterator(self, dataset, training=False):
        if training:
            batch_size = self.batch_size if self.batch_size > 0 else len(dataset)
        else:
            batch_size = max(self.batch_size, EVAL_BATCH)
        return TensorBatches(dataset, batch_size, shuffle=training, device=self.device)

    def train_batches_per_epoch(self, n_rows: int) -> int:
        if isinstance(self.train_split, SeededSplit):
            n_rows -= self.train_split.n_valid(n_rows)
        batch_size = self.batch_size if self.batch_size > 0 else n_rows
        return TensorBatches.count(n_rows, batch_size, shuffle=True)

    def _fit_target(self, y: np.ndarray) -> None:
        """Target scaling (and bins) from the rows of the first fit."""
        self.target_mean_ = float(y.mean())
        self.target_scale_ = float(y.std()) or 1.0
        self.n_outputs_ = 1
        if self.head == "binned":
            z = (y - self.target_mean_) / self.target_scale_
            edges = np.unique(np.quantile(z, np.linspace(0, 1, self.n_bins + 1)))
            if len(edges) < 3:
                raise ValueError("head='binned' needs a target with at least 3 distinct quantiles")
            self.bin_edges_ = edges.astype(np.float32)
            self.bin_centers_ = ((edges[:-1] + edges[1:]) / 2).astype(np.float32)
            # Class k holds targets in (edge k, edge k+1]; the outer bins are open-ended.
            self.inner_edges_ = torch.as_tensor(self.bin_edges_[1:-1])
            self.n_outputs_ = len(self.bin_centers_)
        elif self.head != "regression":
            raise ValueError(f"unknown head {self.head!r}")

    @staticmethod
    def _arrays(X, y):
        X = np.ascontiguousarray(X, dtype=np.float32)
        return X, np.asarray(y, dtype=np.float64).reshape(-1)

    def fit(self, X, y=None, **fit_params):
        """Train from scratch on (X, log price): target scaling from these rows, seeded."""
        X, y = self._arrays(X, y)
        self._fit_target(y)
        torch.manual_seed(self.random_state)
        self.set_params(module__n_inputs=X.shape[1], module__n_outputs=self.n_outputs_)
        return super().fit(X, y, **fit_params)  # initialises, then calls partial_fit

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """More epochs on (X, log price), standardised with the first fit's scaling."""
        X, y = self._arrays(X, y)
        if not hasattr(self, "target_mean_"):
            self._fit_target(y)
            self.set_params(module__n_inputs=X.shape[1], module__n_outputs=self.n_outputs_)
        z = ((y - self.target_mean_) / self.target_scale_).astype(np.float32).reshape(-1, 1)
        return super().partial_fit(X, z, classes, **fit_params)

    # -- per-batch overhead --------------------------------------------------------
    # The hooks below keep skorch's fit loop and only drop work that does nothing here.
    def initialize_history(self):
        if not isinstance(self.history_, BatchHistory):
            self.history_ = BatchHistory()
        self.history_.clear()
        return self

    def notify(self, method_name, **cb_kwargs):
        """Call only the callbacks that implement ``method_name`` (most are no-ops per batch)."""
        getattr(self, method_name)(self, **cb_kwargs)
        for hook in self._hooks(method_name):
            hook(self, **cb_kwargs)

    def _hooks(self, method_name):
        callbacks = self.callbacks_
        if getattr(self, "_hooks_of_", None) is not callbacks:
            self._hooks_of_, self._hook_table_ = callbacks, {}
        hooks = self._hook_table_.get(method_name)
        if hooks is None:
            base = getattr(Callback, method_name, None)
            hooks = self._hook_table_[method_name] = [
                getattr(cb, method_name) for _, cb in callbacks
                if getattr(type(cb), method_name, None) is not base]
        return hooks

    def _set_training(self, training=True):
        if self.module_.training is not training or self.criterion_.training is not training:
            super()._set_training(training)

    def train_step(self, batch, **fit_params):
        """One optimizer step. None of the optimizers offered needs a closure, so the
        step runs without skorch's closure and step accumulator."""
        self._zero_grad_optimizer()
        step = self.train_step_single(batch, **fit_params)
        if self._hooks("on_grad_computed"):  # gradient clipping
            self.notify("on_grad_computed", named_parameters=TeeGenerator(self.get_all_learnable_params()),
                        batch=batch, training=True)
        self._step_optimizer(None)
        return step

    def infer(self, x, **fit_params):
        if isinstance(x, torch.Tensor) and not fit_params:
            return self.module_(x)
        return super().infer(x, **fit_params)

    # -- loss --------------------------------------------------------------------
    def get_loss(self, y_pred, y_true, X=None, training=False):
        if self.head == "binned":
            target = torch.bucketize(y_true.reshape(-1).contiguous(), self.inner_edges_.to(y_true.device))
            loss = nn.functional.cross_entropy(y_pred, target)
        else:
            loss = self.criterion_(y_pred, y_true)
        if self.l1 > 0 and training:
            loss = loss + self.l1 * sum(p.abs().sum() for n, p in self.module_.named_parameters()
                                        if n.endswith("weight") and p.dim() > 1)
        return loss

    # -- prediction --------------------------------------------------------------
    def predict_distribution(self, X):
        """Per-row probabilities over the target bins (binned head only)."""
        if self.head != "binned":
            raise ValueError("predict_distribution needs head='binned'")
        logits = self.forward(np.ascontiguousarray(X, dtype=np.float32))
        return torch.softmax(logits, dim=1).numpy()

    def bin_values(self) -> np.ndarray:
        """Bin centres in log price."""
        return self.bin_centers_.astype(np.float64) * self.target_scale_ + self.target_mean_

    def bin_edges(self) -> np.ndarray:
        """Bin edges in log price."""
        return self.bin_edges_.astype(np.float64) * self.target_scale_ + self.target_mean_

    def predict(self, X):
        X = np.ascontiguousarray(X, dtype=np.float32)
        if self.head == "binned":
            z = self.predict_distribution(X).astype(np.float64) @ self.bin_centers_.astype(np.float64)
        else:
            z = self.forward(X).numpy().reshape(-1).astype(np.float64)
        return z * self.target_scale_ + self.target_mean_

    def predict_interval(self, X, coverage=0.8):
        """Central ``coverage`` interval of the predicted distribution, in log price
        (binned head). Each bin's mass is spread uniformly over the bin, the same
        distribution whose mean ``predict`` returns, so the quantiles are interpolated."""
        if not 0 < coverage < 1:
            raise ValueError(f"coverage must be in (0, 1), got {coverage}")
        probs = self.predict_distribution(X).astype(np.float64)
        cdf = np.cumsum(probs, axis=1)
        cdf = np.hstack([np.zeros((len(cdf), 1)), cdf / cdf[:, -1:]])
        edges = self.bin_edges()
        tail = (1 - coverage) / 2
        lo = np.array([np.interp(tail, row, edges) for row in cdf])
        hi = np.array([np.interp(1 - tail, row, edges) for row in cdf])
        return lo, hi


def _optimizer(cfg: MLPConfig) -> tuple[type, dict]:
    wd = cfg.weight_decay
    return {
        "sgd": (torch.optim.SGD, {"weight_decay": wd}),
        "momentum": (torch.optim.SGD, {"momentum": cfg.momentum, "weight_decay": wd}),
        "nesterov": (torch.optim.SGD, {"momentum": cfg.momentum, "nesterov": True, "weight_decay": wd}),
        "adagrad": (torch.optim.Adagrad, {"weight_decay": wd}),
        "rmsprop": (torch.optim.RMSprop, {"momentum": 0.0, "weight_decay": wd}),
        "adam": (torch.optim.Adam, {"betas": (cfg.beta1, cfg.beta2), "weight_decay": wd}),
        "adamw": (torch.optim.AdamW, {"betas": (cfg.beta1, cfg.beta2), "weight_decay": wd}),
    }[cfg.optimizer]


def _criterion(cfg: MLPConfig) -> tuple[type, dict]:
    if cfg.loss == "huber":
        return nn.HuberLoss, {"delta": cfg.huber_delta}
    return {"mse": nn.MSELoss, "l1": nn.L1Loss}[cfg.loss], {}


def _device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def build_mlp(cfg: MLPConfig, seed: int) -> MLPRegressor:
    """The skorch net a ``kind: mlp`` entry describes."""
    callbacks: list[tuple[str, Callback]] = [("stop_on_non_finite", StopOnNonFinite()),
                                             ("holdout", HoldoutLoss())]
    if cfg.max_norm is not None:
        callbacks.append(("max_norm", MaxNorm(cfg.max_norm)))
    if cfg.grad_clip is not None:
        callbacks.append(("grad_clip", GradientNormClipping(cfg.grad_clip)))
    if cfg.early_stopping.enabled:
        callbacks.append(("early_stopping", EarlyStopping(
            monitor="valid_loss", patience=cfg.early_stopping.patience, load_best=True,
            sink=_log_info)))
    if cfg.lr_schedule == "plateau":
        callbacks.append(("lr_scheduler", LRScheduler(
            policy=torch.optim.lr_scheduler.ReduceLROnPlateau, monitor="valid_loss", factor=cfg.lr_gamma,
            patience=max(1, cfg.early_stopping.patience // 2))))
    elif cfg.lr_schedule == "onecycle":
        # Momentum (beta1) is not cycled: momentum/beta1 stay what the config says, and
        # plain SGD stays plain SGD.
        callbacks.append(("lr_scheduler", OneCycle(
            policy=torch.optim.lr_scheduler.OneCycleLR, max_lr=cfg.lr, epochs=cfg.epochs, steps_per_epoch=1,
            cycle_momentum=False, step_every="batch")))
    elif cfg.lr_schedule != "none" or cfg.warmup_epochs:
        callbacks.append(("lr_scheduler", LRScheduler(policy=torch.optim.lr_scheduler.LambdaLR, lr_lambda=LRFactor(
            cfg.lr_schedule, cfg.epochs, cfg.lr_step_size, cfg.lr_gamma, cfg.warmup_epochs))))

    optimizer, optimizer_kwargs = _optimizer(cfg)
    criterion, criterion_kwargs = _criterion(cfg)
    return MLPRegressor(
        module=MLP,
        module__hidden=tuple(cfg.hidden),
        module__activation=cfg.activation,
        module__batch_norm=cfg.batch_norm,
        module__dropout=tuple(cfg.dropout) if isinstance(cfg.dropout, list) else cfg.dropout,
        module__input_dropout=cfg.input_dropout,
        module__input_noise=cfg.input_noise,
        module__init=cfg.init,
        module__init_std=cfg.init_std,
        module__bias_init=cfg.bias_init,
        criterion=criterion,
        **{f"criterion__{k}": v for k, v in criterion_kwargs.items()},
        optimizer=optimizer,
        lr=cfg.lr,
        **{f"optimizer__{k}": v for k, v in optimizer_kwargs.items()},
        max_epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        train_split=SeededSplit(cfg.valid_fraction, seed) if cfg.valid_fraction > 0 else None,
        callbacks=callbacks,
        # print_log off: progress goes to the metrics files and MLflow, not stdout.
        callbacks__print_log=None,
        verbose=0,
        l1=cfg.l1,
        head=cfg.head,
        n_bins=cfg.n_bins,
        random_state=seed,
        device=_device(cfg.device),
    )
def build_regressor(cfg: ModelConfig, seed: int):
    if isinstance(cfg, MLPConfig):
        from .mlp_extras import seed_average  # score branch

        return seed_average(build_mlp(cfg, seed), cfg.n_seeds, seed)
    if isinstance(cfg, RidgeConfig):
        return Ridge(alpha=cfg.alpha)
    if isinstance(cfg, LassoConfig):
        return Lasso(alpha=cfg.alpha, max_iter=cfg.max_iter, random_state=seed)
    if isinstance(cfg, ElasticNetConfig):
        return ElasticNet(alpha=cfg.alpha, l1_ratio=cfg.l1_ratio, max_iter=cfg.max_iter, random_state=seed)
    if isinstance(cfg, KernelRidgeConfig):
        return KernelRidge(alpha=cfg.alpha, kernel=cfg.kernel, degree=cfg.degree, gamma=cfg.gamma,
                           coef0=cfg.coef0)
    if isinstance(cfg, HGBConfig):
        return HistGradientBoostingRegressor(
            learning_rate=cfg.learning_rate, max_iter=cfg.max_iter, max_leaf_nodes=cfg.max_leaf_nodes,
            min_samples_leaf=cfg.min_samples_leaf, l2_regularization=cfg.l2_regularization,
            random_state=seed)
    from .members import build_member_regressor  # boosted/kernel kinds (score branch)

    regressor = build_member_regressor(cfg, seed)
    if regressor is not None:
        return regressor
    raise TypeError(f"no regressor for {type(cfg).__name__}")


def build_estimator(cfg: ModelConfig, features: FeaturesConfig, seed: int) -> Pipeline:
    """Raw house rows in, log price out: preprocessing and regressor as one estimator."""
    return Pipeline([
        ("preprocess", build_member_preprocessor(cfg, features, seed)),  # per kind (score branch)
        ("model", build_regressor(cfg, seed)),
    ])
