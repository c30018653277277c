"""The skorch net a ``kind: mlp`` entry describes: module, optimizer, loss, callbacks.

Its own module so that torch is imported only by processes that build a net (the
estimator factory imports it on first use): a ridge or tree stage starts seconds sooner.
"""

from __future__ import annotations

import logging

import torch
from skorch.callbacks import Callback, EarlyStopping, GradientNormClipping, LRScheduler
from skorch.dataset import ValidSplit
from torch import nn

from houseprices.config.models import MLPConfig
from houseprices.features.neural import CODE_PREFIX
from houseprices.models.mlp.modules import MLP, EmbeddingMLP
from houseprices.models.mlp.regressor import (
    EVAL_BATCH,
    BinnedMLPRegressor,
    HoldoutLoss,
    LRFactor,
    MaxNorm,
    MLPRegressor,
    OneCycle,
    StopOnNonFinite,
    TensorBatches,
)
from houseprices.models.mlp.weight_averaging import WeightAverage

logger = logging.getLogger(__name__)


def torch_optimizer(cfg: MLPConfig) -> tuple[type, dict]:
    """The torch optimizer class and its keyword arguments (learning rate aside)."""
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


def _criterion(cfg: MLPConfig) -> dict:
    if cfg.head == "binned":
        return {}  # BinnedMLPRegressor's cross-entropy
    if cfg.loss == "huber":
        return {"criterion": nn.HuberLoss, "criterion__delta": cfg.huber_delta}
    return {"criterion": {"mse": nn.MSELoss, "l1": nn.L1Loss}[cfg.loss]}


# ``device: auto`` trains on the GPU only when one step's matrix work, batch rows times
# the widest layer, reaches this: below it a GPU step is bound by kernel launches and the
# per-step sync, and one CPU thread finishes first (bench/device_check.py --steps;
# docs/benchmarks.md, "device: auto").
AUTO_CUDA_MIN_BATCH_WIDTH = 131_072


def resolve_device(requested: str, batch_size: int = 0, widest_layer: int = 0) -> str:
    """``cpu`` or ``cuda``: ``auto`` picks the GPU when there is one and the net's steps are
    large enough for it to be faster (see AUTO_CUDA_MIN_BATCH_WIDTH)."""
    if requested != "auto":
        return requested
    if batch_size * widest_layer < AUTO_CUDA_MIN_BATCH_WIDTH:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def _log_info(message: str) -> None:
    logger.info(message)


def _lr_scheduler(cfg: MLPConfig) -> Callback | None:
    """The learning-rate schedule ``lr_schedule`` (with warm-up and SWA's constant tail) names."""
    if cfg.lr_schedule == "plateau":
        return LRScheduler(
            policy=torch.optim.lr_scheduler.ReduceLROnPlateau,
            monitor="valid_loss",
            factor=cfg.lr_gamma,
            patience=max(1, cfg.early_stopping.patience // 2),
        )
    if cfg.lr_schedule == "onecycle":
        # Momentum (beta1) is not cycled: momentum/beta1 stay what the config says, and
        # plain SGD stays plain SGD.
        return OneCycle(
            policy=torch.optim.lr_scheduler.OneCycleLR,
            max_lr=cfg.lr,
            epochs=cfg.epochs,
            steps_per_epoch=1,
            cycle_momentum=False,
            step_every="batch",
        )
    if cfg.lr_schedule != "none" or cfg.warmup_epochs or cfg.swa_lr is not None:
        hold = (
            {} if cfg.swa_lr is None else {"hold_from": cfg.epochs - cfg.averaged_epochs(), "hold": cfg.swa_lr / cfg.lr}
        )
        factor = LRFactor(cfg.lr_schedule, cfg.epochs, cfg.lr_step_size, cfg.lr_gamma, cfg.warmup_epochs, **hold)
        return LRScheduler(policy=torch.optim.lr_scheduler.LambdaLR, lr_lambda=factor)
    return None


def _callbacks(cfg: MLPConfig) -> list[tuple[str, Callback]]:
    callbacks: list[tuple[str, Callback]] = [("stop_on_non_finite", StopOnNonFinite()), ("holdout", HoldoutLoss())]
    if cfg.max_norm is not None:
        callbacks.append(("max_norm", MaxNorm(cfg.max_norm)))
    if cfg.grad_clip is not None:
        callbacks.append(("grad_clip", GradientNormClipping(cfg.grad_clip)))
    if cfg.early_stopping.enabled:
        stopping = EarlyStopping(
            monitor="valid_loss", patience=cfg.early_stopping.patience, load_best=True, sink=_log_info
        )
        callbacks.append(("early_stopping", stopping))
    scheduler = _lr_scheduler(cfg)
    if scheduler is not None:
        callbacks.append(("lr_scheduler", scheduler))
    if cfg.swa_fraction:
        callbacks.append(("weight_average", WeightAverage(cfg.averaged_epochs())))
    return callbacks


def build_mlp(cfg: MLPConfig, seed: int) -> MLPRegressor:
    """The skorch net a ``kind: mlp`` entry describes."""
    optimizer, optimizer_kwargs = torch_optimizer(cfg)
    device = resolve_device(cfg.device, cfg.batch_size, max(cfg.hidden, default=0))
    regressor, head_kwargs = (
        (BinnedMLPRegressor, {"n_bins": cfg.n_bins}) if cfg.head == "binned" else (MLPRegressor, {})
    )
    if cfg.embedding_dim > 0:
        head_kwargs.update(
            module=EmbeddingMLP,
            module__embedding_dim=cfg.embedding_dim,
            embed_columns=CODE_PREFIX,
            optimizer__param_groups=[("embeddings.*", {"weight_decay": cfg.embedding_weight_decay})],
        )
    return regressor(
        **{"module": MLP, **head_kwargs},
        module__hidden=tuple(cfg.hidden),
        module__activation=cfg.activation,
        module__batch_norm=cfg.batch_norm,
        module__dropout=tuple(cfg.dropout) if isinstance(cfg.dropout, list) else cfg.dropout,
        module__input_dropout=cfg.input_dropout,
        module__input_noise=cfg.input_noise,
        module__init=cfg.init,
        module__init_std=cfg.init_std,
        module__bias_init=cfg.bias_init,
        **_criterion(cfg),
        optimizer=optimizer,
        lr=cfg.lr,
        **{f"optimizer__{k}": v for k, v in optimizer_kwargs.items()},
        max_epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        iterator_train=TensorBatches,
        iterator_train__shuffle=True,
        iterator_train__device=device,
        iterator_valid=TensorBatches,
        iterator_valid__batch_size=max(cfg.batch_size, EVAL_BATCH),
        iterator_valid__device=device,
        train_split=ValidSplit(cfg.valid_fraction, random_state=seed) if cfg.valid_fraction > 0 else None,
        callbacks=_callbacks(cfg),
        # print_log off: progress goes to the metrics files and MLflow, not stdout; epoch_timer off:
        # a fitted net carries no wall-clock value, so a refit pickles to the same bytes (dvc.lock).
        callbacks__print_log=None,
        callbacks__epoch_timer=None,
        verbose=0,
        l1=cfg.l1,
        random_state=seed,
        device=device,
    )
