"""Model factory: one function turns a ``models.<name>`` entry of params.yaml into a
scikit-learn Pipeline (preprocessing + regressor) that predicts log prices.

The MLP is a skorch ``NeuralNetRegressor`` subclass; each lecture technique is a
constructor parameter, a small callback, or a ``get_loss`` hook, never a copied loop.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from skorch import NeuralNetRegressor
from skorch.callbacks import Callback, EarlyStopping, GradientNormClipping, LRScheduler
from skorch.dataset import Dataset
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
from .features import build_preprocessor

ACTIVATIONS = {
    "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU,
    "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
}


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
    """Initialise every Linear layer; zero weights are refused (symmetry never breaks)."""
    if scheme == "zeros":
        raise ValueError("all-zero weight init: every hidden unit would compute the same function "
                         "and receive the same gradient, so symmetry is never broken")
    nonlinearity = "leaky_relu" if activation == "leaky_relu" else "relu"
    for layer in module.modules():
        if not isinstance(layer, nn.Linear):
            continue
        w = layer.weight
        if scheme == "xavier_normal":
            nn.init.xavier_normal_(w)
        elif scheme == "xavier_uniform":
            nn.init.xavier_uniform_(w)
        elif scheme == "he_normal":
            nn.init.kaiming_normal_(w, nonlinearity=nonlinearity)
        elif scheme == "he_uniform":
            nn.init.kaiming_uniform_(w, nonlinearity=nonlinearity)
        elif scheme == "normal":
            nn.init.normal_(w, 0.0, std)
        else:
            raise ValueError(f"unknown init scheme {scheme!r}")
        nn.init.constant_(layer.bias, bias)


class MLP(nn.Module):
    """Fully connected net: [Linear -> (BatchNorm) -> activation -> (Dropout)] * depth -> Linear."""

    def __init__(self, n_inputs=1, n_outputs=1, hidden=(128,), activation="relu", batch_norm=False,
                 dropout=0.0, input_dropout=0.0, input_noise=0.0, init="he_normal", init_std=0.01,
                 bias_init=0.0):
        super().__init__()
        rates = list(dropout) if isinstance(dropout, (list, tuple)) else [dropout] * len(hidden)
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
            layers.append(ACTIVATIONS[activation]())
            if rate > 0:
                layers.append(nn.Dropout(rate))  # inverted dropout; identity in eval mode
            width = units
        layers.append(nn.Linear(width, n_outputs))
        self.layers = nn.Sequential(*layers)
        init_weights(self, init, init_std, bias_init, activation)

    def forward(self, x):
        return self.layers(x)


class TensorBatches:
    """Batches sliced from tensors already in memory: no per-row Dataset indexing and no
    collate step, which dominate skorch's time on small tabular data."""

    def __init__(self, dataset, batch_size: int, shuffle: bool, device: str = "cpu"):
        self.X = torch.as_tensor(dataset.X).to(device)
        self.y = None if dataset.y is None else torch.as_tensor(dataset.y).to(device)
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self):
        return math.ceil(len(self.X) / self.batch_size)

    def __iter__(self):
        n = len(self.X)
        if self.shuffle:
            order = torch.randperm(n, device=self.X.device)
            X, y = self.X[order], (None if self.y is None else self.y[order])
        else:
            X, y = self.X, self.y
        for start in range(0, n, self.batch_size):
            stop = start + self.batch_size
            if self.shuffle and n - start == 1 and start > 0:
                return  # a lone row would break BatchNorm; it is seen in other epochs
            yield X[start:stop], (None if y is None else y[start:stop])


class SeededSplit:
    """Internal validation split (early stopping, plateau schedule, curves), seeded so
    the same params always hold out the same rows."""

    def __init__(self, fraction: float, seed: int):
        self.fraction = fraction
        self.seed = seed

    def __call__(self, dataset, y=None, **kwargs):
        n = len(dataset.X)
        order = np.random.default_rng(self.seed).permutation(n)
        n_valid = max(1, int(round(self.fraction * n)))
        valid, train = order[:n_valid], order[n_valid:]
        return Dataset(dataset.X[train], dataset.y[train]), Dataset(dataset.X[valid], dataset.y[valid])


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
                    layer.weight.copy_(torch.renorm(layer.weight, p=2, dim=0, maxnorm=self.max_norm))


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
        batch_size = self.batch_size if self.batch_size > 0 else len(dataset)
        return TensorBatches(dataset, batch_size, shuffle=training, device=self.device)

    def fit(self, X, y=None, **fit_params):
        X = np.ascontiguousarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        self.target_mean_ = float(y.mean())
        self.target_scale_ = float(y.std()) or 1.0
        z = ((y - self.target_mean_) / self.target_scale_).astype(np.float32).reshape(-1, 1)
        n_outputs = 1
        if self.head == "binned":
            qs = np.linspace(0, 1, self.n_bins + 1)
            edges = np.unique(np.quantile(z, qs))
            self.bin_edges_ = edges.astype(np.float32)
            self.bin_centers_ = ((edges[:-1] + edges[1:]) / 2).astype(np.float32)
            n_outputs = len(self.bin_centers_)
        elif self.head != "regression":
            raise ValueError(f"unknown head {self.head!r}")
        torch.manual_seed(self.random_state)
        self.set_params(module__n_inputs=X.shape[1], module__n_outputs=n_outputs)
        return super().fit(X, z, **fit_params)

    # -- loss --------------------------------------------------------------------
    def get_loss(self, y_pred, y_true, X=None, training=False):
        if self.head == "binned":
            edges = torch.as_tensor(self.bin_edges_[1:-1], device=y_pred.device)
            target = torch.bucketize(y_true.reshape(-1).contiguous(), edges)
            loss = nn.functional.cross_entropy(y_pred, target)
        else:
            loss = super().get_loss(y_pred, y_true, X=X, training=training)
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
        return self.bin_centers_ * self.target_scale_ + self.target_mean_

    def predict(self, X):
        X = np.ascontiguousarray(X, dtype=np.float32)
        if self.head == "binned":
            z = self.predict_distribution(X) @ self.bin_centers_
        else:
            z = self.forward(X).numpy().reshape(-1)
        return z.astype(np.float64) * self.target_scale_ + self.target_mean_

    def predict_interval(self, X, coverage=0.8):
        """Central interval of the predicted distribution, in log price (binned head)."""
        probs = self.predict_distribution(X)
        cdf = np.cumsum(probs, axis=1)
        values = self.bin_values()
        lo = values[np.argmax(cdf >= (1 - coverage) / 2, axis=1)]
        hi = values[np.argmax(cdf >= 1 - (1 - coverage) / 2, axis=1)]
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


def build_mlp(cfg: MLPConfig, seed: int, n_train_rows: int | None = None) -> MLPRegressor:
    callbacks: list[tuple[str, Callback]] = [("stop_on_non_finite", StopOnNonFinite())]
    if cfg.max_norm is not None:
        callbacks.append(("max_norm", MaxNorm(cfg.max_norm)))
    if cfg.grad_clip is not None:
        callbacks.append(("grad_clip", GradientNormClipping(cfg.grad_clip)))
    if cfg.early_stopping.enabled:
        callbacks.append(("early_stopping", EarlyStopping(
            monitor="valid_loss", patience=cfg.early_stopping.patience, load_best=True)))
    if cfg.lr_schedule == "plateau":
        callbacks.append(("lr_scheduler", LRScheduler(
            policy="ReduceLROnPlateau", monitor="valid_loss", factor=cfg.lr_gamma,
            patience=max(1, cfg.early_stopping.patience // 2))))
    elif cfg.lr_schedule == "onecycle":
        rows = n_train_rows or 1460
        rows = rows - int(round(cfg.valid_fraction * rows))
        callbacks.append(("lr_scheduler", LRScheduler(
            policy="OneCycleLR", max_lr=cfg.lr, epochs=cfg.epochs,
            steps_per_epoch=math.ceil(rows / cfg.batch_size) + 1, step_every="batch")))
    elif cfg.lr_schedule != "none" or cfg.warmup_epochs:
        callbacks.append(("lr_scheduler", LRScheduler(policy="LambdaLR", lr_lambda=LRFactor(
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
        l1=cfg.l1,
        head=cfg.head,
        n_bins=cfg.n_bins,
        random_state=seed,
        device=_device(cfg.device),
    )


def build_regressor(cfg: ModelConfig, seed: int, n_train_rows: int | None = None):
    if isinstance(cfg, MLPConfig):
        return build_mlp(cfg, seed, n_train_rows)
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
    raise TypeError(f"no regressor for {type(cfg).__name__}")


def build_estimator(cfg: ModelConfig, features: FeaturesConfig, seed: int,
                    n_train_rows: int | None = None) -> Pipeline:
    """Raw house rows in, log price out: preprocessing and regressor as one estimator."""
    return Pipeline([
        ("preprocess", build_preprocessor(features, seed)),
        ("model", build_regressor(cfg, seed, n_train_rows)),
    ])
