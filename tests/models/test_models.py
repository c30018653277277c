"""The MLP family: every option of ``models.<name>`` with ``kind: mlp`` changes what is
trained, and each test here would fail if its option were ignored.

Tiny synthetic data and a few epochs keep the whole file to seconds."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback, GradientNormClipping
from torch import nn

from conftest import DIVERGING_MLP
from houseprices.config.models import MLPConfig
from houseprices.config.params import parse_params
from houseprices.errors import ConfigError, TrainingError
from houseprices.evaluation.cross_validation import cross_validate, fit_estimator
from houseprices.models.mlp.factory import AUTO_CUDA_MIN_BATCH_WIDTH, build_mlp, resolve_device
from houseprices.models.mlp.modules import GaussianNoise
from houseprices.models.mlp.regressor import BinnedMLPRegressor, MLPRegressor, TensorBatches
from houseprices.models.registry import KINDS, build_regressor

N_FEATURES = 8


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def synthetic(n=200, d=N_FEATURES, seed=0):
    """A log-price-like target: linear in the features plus a kink and noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = 12.0 + 0.3 * X[:, 0] - 0.2 * X[:, 1] + 0.1 * np.abs(X[:, 2]) + 0.05 * rng.normal(size=n)
    return X, y


XY = synthetic()


def config(**kw) -> MLPConfig:
    """A small plain net: each test switches on only the option it checks."""
    base = {
        "hidden": [16],
        "epochs": 5,
        "batch_size": 32,
        "activation": "relu",
        "loss": "mse",
        "weight_decay": 0.0,
        "lr_schedule": "none",
        "swa_fraction": 0.0,
    }
    return MLPConfig(**{**base, **kw})


def built(n_inputs=N_FEATURES, seed=0, **kw) -> MLPRegressor:
    """An initialised (unfitted) net for structure checks."""
    net = build_mlp(config(**kw), seed)
    return net.set_params(module__n_inputs=n_inputs).initialize()


def fitted(X=None, y=None, seed=0, extra_callbacks=(), **kw) -> MLPRegressor:
    X, y = XY if X is None else (X, y)
    net = build_mlp(config(**kw), seed)
    net.callbacks = list(net.callbacks) + list(extra_callbacks)
    return net.fit(X, y)


def layers(net, kind):
    return [m for m in net.module_.modules() if isinstance(m, kind)]


def weight_matrices(net):
    return [m.weight.detach() for m in layers(net, nn.Linear)]


class LRProbe(Callback):
    """Records the learning rate each epoch and each training batch starts with."""

    def initialize(self):
        self.epochs, self.batches = [], []
        return self

    def on_epoch_begin(self, net, **kwargs):
        self.epochs.append(net.optimizer_.param_groups[0]["lr"])

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.batches.append(net.optimizer_.param_groups[0]["lr"])


class GradProbe(Callback):
    """Records the total gradient norm the optimizer is about to use."""

    def initialize(self):
        self.norms = []
        return self

    def on_grad_computed(self, net, named_parameters, **kwargs):
        grads = [p.grad.detach().reshape(-1) for _, p in named_parameters if p.grad is not None]
        self.norms.append(float(torch.cat(grads).norm()))


# ------------------------------------------------------------------- architecture
def test_batch_norm_adds_a_batchnorm_after_each_hidden_linear():
    assert len(layers(built(hidden=[16, 8], batch_norm=True), nn.BatchNorm1d)) == 2
    assert not layers(built(hidden=[16, 8], batch_norm=False), nn.BatchNorm1d)
    assert [m.num_features for m in layers(built(hidden=[16, 8], batch_norm=True), nn.BatchNorm1d)] == [16, 8]


def test_dropout_one_rate_per_layer_or_one_for_all():
    assert [m.p for m in layers(built(hidden=[16, 8], dropout=0.3), nn.Dropout)] == [0.3, 0.3]
    assert [m.p for m in layers(built(hidden=[16, 8], dropout=[0.1, 0.4]), nn.Dropout)] == [0.1, 0.4]
    assert not layers(built(hidden=[16, 8], dropout=0.0), nn.Dropout)
    first = built(input_dropout=0.2).module_.layers[0]
    assert isinstance(first, nn.Dropout) and first.p == 0.2


def test_dropout_is_on_while_training_and_off_at_predict():
    X, y = XY
    net = fitted(dropout=0.5, epochs=2)
    np.testing.assert_array_equal(net.predict(X), net.predict(X))  # eval mode: deterministic
    Xt = torch.from_numpy(X)
    net.module_.train()
    assert not torch.equal(net.module_(Xt), net.module_(Xt))  # dropout active in training
    net.module_.eval()
    expected = net.module_(Xt).detach().numpy().reshape(-1) * net.target_scale_ + net.target_mean_
    np.testing.assert_allclose(net.predict(X), expected, rtol=1e-6)


def test_input_noise_perturbs_training_inputs_only():
    net = built(input_noise=0.5)
    noise = net.module_.layers[0]
    assert isinstance(noise, GaussianNoise) and noise.std == 0.5
    x = torch.ones(4, N_FEATURES)
    noise.train()
    assert not torch.equal(noise(x), x)
    noise.eval()
    assert torch.equal(noise(x), x)
    assert not layers(built(input_noise=0.0), GaussianNoise)


@pytest.mark.parametrize(
    "name, cls",
    [
        ("relu", nn.ReLU),
        ("leaky_relu", nn.LeakyReLU),
        ("elu", nn.ELU),
        ("gelu", nn.GELU),
        ("tanh", nn.Tanh),
        ("sigmoid", nn.Sigmoid),
    ],
)
def test_each_activation_is_used(name, cls):
    net = built(hidden=[16, 8], activation=name)
    assert len(layers(net, cls)) == 2
    others = {nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.Tanh, nn.Sigmoid} - {cls}
    assert not any(isinstance(m, tuple(others)) for m in net.module_.modules())


# ------------------------------------------------------------------- initialisation
FAN_IN, FAN_OUT = 400, 300


@pytest.mark.parametrize(
    "scheme, activation, std, bound",
    [
        ("he_normal", "relu", math.sqrt(2 / FAN_IN), None),
        ("he_normal", "leaky_relu", math.sqrt(2 / (1 + 0.01**2) / FAN_IN), None),
        ("he_normal", "tanh", 5 / 3 / math.sqrt(FAN_IN), None),
        ("he_uniform", "relu", None, math.sqrt(6 / FAN_IN)),
        ("xavier_normal", "relu", math.sqrt(2 / (FAN_IN + FAN_OUT)), None),
        ("xavier_uniform", "relu", None, math.sqrt(6 / (FAN_IN + FAN_OUT))),
        ("normal", "relu", 0.05, None),
    ],
)
def test_init_scheme_statistics_and_bias(scheme, activation, std, bound):
    net = built(n_inputs=FAN_IN, hidden=[FAN_OUT], init=scheme, activation=activation, init_std=0.05, bias_init=0.3)
    w = net.module_.layers[0].weight.detach()
    assert abs(float(w.mean())) < 0.01
    if bound is not None:
        assert float(w.abs().max()) <= bound + 1e-6
        assert float(w.abs().max()) > 0.95 * bound
        std = bound / math.sqrt(3)
    assert float(w.std()) == pytest.approx(std, rel=0.03)
    for linear in layers(net, nn.Linear):
        assert torch.all(linear.bias == 0.3)


def test_zero_init_is_refused_by_config():
    with pytest.raises(ConfigError, match=r"models\.m: init 'zeros' gives every hidden unit the same gradient"):
        parse_params({"models": {"m": {"kind": "mlp", "init": "zeros"}}})


# ------------------------------------------------------------------- regularisation
def test_max_norm_bounds_every_incoming_weight_vector():
    free = fitted(optimizer="adam", lr=0.01)
    assert max(float(w.norm(dim=1).max()) for w in weight_matrices(free)) > 1.0
    net = fitted(optimizer="adam", lr=0.01, max_norm=0.5)
    for w in weight_matrices(net):
        assert float(w.norm(dim=1).max()) <= 0.5 + 1e-5


def test_l1_shrinks_weights():
    plain = fitted(optimizer="adam", lr=0.01, epochs=10)
    sparse = fitted(optimizer="adam", lr=0.01, epochs=10, l1=0.05)
    l1 = lambda net: sum(float(w.abs().sum()) for w in weight_matrices(net))  # noqa: E731
    assert l1(sparse) < 0.7 * l1(plain)


def test_l1_is_added_to_the_training_loss_only():
    net = built(l1=0.5)
    y_pred, y_true = torch.zeros(4, 1), torch.ones(4, 1)
    penalty = sum(float(w.abs().sum()) for w in weight_matrices(net))
    with torch.no_grad():
        assert float(net.get_loss(y_pred, y_true, training=True)) == pytest.approx(1 + 0.5 * penalty, rel=1e-5)
        assert float(net.get_loss(y_pred, y_true, training=False)) == pytest.approx(1.0)


def test_weight_decay_shrinks_weight_norms():
    norm = lambda net: sum(float(w.norm()) for w in weight_matrices(net))  # noqa: E731
    assert norm(fitted(optimizer="adamw", lr=0.01, weight_decay=5.0)) < 0.7 * norm(
        fitted(optimizer="adamw", lr=0.01, weight_decay=0.0)
    )
    assert built(weight_decay=3.0).optimizer_.param_groups[0]["weight_decay"] == 3.0


def test_grad_clip_bounds_the_gradient_norm():
    clip = dict(built(grad_clip=0.01).callbacks)["grad_clip"]
    assert isinstance(clip, GradientNormClipping) and clip.gradient_clip_value == 0.01
    free, clipped = GradProbe(), GradProbe()
    fitted(epochs=2, extra_callbacks=[("probe", free)])
    fitted(epochs=2, grad_clip=0.01, extra_callbacks=[("probe", clipped)])
    assert max(free.norms) > 0.1
    assert max(clipped.norms) <= 0.01 * (1 + 1e-4)


def test_early_stopping_restores_the_best_epoch():
    X, y = synthetic(n=80, d=40, seed=1)
    y = y + np.random.default_rng(2).normal(scale=0.3, size=len(y))  # noise to overfit
    net = fitted(
        X,
        y,
        hidden=[64],
        optimizer="adam",
        lr=0.01,
        epochs=200,
        valid_fraction=0.25,
        early_stopping={"enabled": True, "patience": 5},
    )
    losses = net.history[:, "valid_loss"]
    best_epoch = dict(net.callbacks_)["early_stopping"].best_epoch_
    assert len(net.history) == best_epoch + 5 < 200  # stopped after `patience` epochs without progress
    assert losses[best_epoch - 1] == pytest.approx(min(losses), rel=1e-3)
    assert losses[-1] > losses[best_epoch - 1]
    # The weights the net now holds give the best epoch's validation loss.
    _, held_out = net.get_split_datasets(X, y)
    valid = np.asarray(held_out.indices)
    assert len(valid) == 20  # ValidSplit(0.25, random_state=seed) holds out a quarter
    z = ((y[valid] - net.target_mean_) / net.target_scale_).astype(np.float32).reshape(-1, 1)
    restored = float(net.get_loss(net.forward(X[valid]), torch.from_numpy(z)))
    assert restored == pytest.approx(losses[best_epoch - 1], rel=1e-5)


# ------------------------------------------------------------------- optimisation
@pytest.mark.parametrize(
    "name, cls, expected",
    [
        ("sgd", torch.optim.SGD, {"momentum": 0, "nesterov": False}),
        ("momentum", torch.optim.SGD, {"momentum": 0.8, "nesterov": False}),
        ("nesterov", torch.optim.SGD, {"momentum": 0.8, "nesterov": True}),
        ("adagrad", torch.optim.Adagrad, {}),
        ("rmsprop", torch.optim.RMSprop, {"momentum": 0}),
        ("adam", torch.optim.Adam, {"betas": (0.85, 0.99)}),
        ("adamw", torch.optim.AdamW, {"betas": (0.85, 0.99), "weight_decay": 0.5}),
    ],
)
def test_each_optimizer_maps_to_its_torch_class(name, cls, expected):
    net = built(optimizer=name, lr=0.02, momentum=0.8, beta1=0.85, beta2=0.99, weight_decay=0.5)
    assert type(net.optimizer_) is cls
    group = net.optimizer_.param_groups[0]
    assert group["lr"] == 0.02 and group["weight_decay"] == 0.5
    for key, value in expected.items():
        assert group[key] == value, key


def lr_trajectory(**kw) -> LRProbe:
    probe = LRProbe()
    fitted(extra_callbacks=[("probe", probe)], **{"optimizer": "sgd", "lr": 0.1, "epochs": 8, **kw})
    return probe


@pytest.mark.parametrize(
    "schedule, expected",
    [
        ("none", [0.1] * 8),
        ("step", [0.1] * 3 + [0.05] * 3 + [0.025] * 2),
        ("exponential", [0.1 * 0.5**e for e in range(8)]),
        ("cosine", [0.1 * 0.5 * (1 + math.cos(math.pi * e / 8)) for e in range(8)]),
    ],
)
def test_epoch_schedules_follow_their_formula(schedule, expected):
    lrs = lr_trajectory(lr_schedule=schedule, lr_step_size=3, lr_gamma=0.5).epochs
    np.testing.assert_allclose(lrs, expected, rtol=1e-6)


def test_warmup_starts_low_and_reaches_the_learning_rate():
    np.testing.assert_allclose(lr_trajectory(warmup_epochs=3).epochs, [0.025, 0.05, 0.075] + [0.1] * 5, rtol=1e-6)
    cosine = lr_trajectory(warmup_epochs=2, lr_schedule="cosine").epochs
    assert cosine[0] < cosine[1] < cosine[2] == pytest.approx(0.1)
    assert cosine[-1] < 0.1 * 0.2


def test_plateau_lowers_the_rate_when_validation_stalls():
    # A learning rate too small to move anything: valid_loss never improves.
    lrs = lr_trajectory(
        lr=1e-6,
        lr_schedule="plateau",
        lr_gamma=0.5,
        valid_fraction=0.2,
        early_stopping={"enabled": False, "patience": 2},
    ).epochs
    assert lrs[0] == 1e-6 and lrs[-1] <= 1e-6 * 0.25
    assert all(b <= a for a, b in zip(lrs, lrs[1:], strict=False))


def test_onecycle_steps_every_batch_of_the_training_split():
    X, y = synthetic(n=202)  # 202 - 41 validation rows = 161 = 5 * 32 + a lone row (dropped)
    probe = LRProbe()
    net = fitted(
        X,
        y,
        extra_callbacks=[("probe", probe)],
        optimizer="sgd",
        lr=0.1,
        epochs=8,
        lr_schedule="onecycle",
        valid_fraction=0.2,
    )
    scheduler = dict(net.callbacks_)["lr_scheduler"].lr_scheduler_
    assert isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR)
    assert len(probe.batches) == 8 * 5 == scheduler.total_steps
    lrs = probe.batches
    peak = int(np.argmax(lrs))
    assert lrs[0] == pytest.approx(0.1 / 25) and max(lrs) == pytest.approx(0.1, rel=1e-3)
    assert 0 < peak < len(lrs) - 1
    assert lrs[-1] == pytest.approx(0.1 / 25 / 1e4, rel=1e-3)  # ends exactly at the floor
    assert net.optimizer_.param_groups[0]["momentum"] == 0  # plain SGD stays plain


# ------------------------------------------------------------------- loss and target
@pytest.mark.parametrize(
    "loss, cls, value",
    [
        ("mse", nn.MSELoss, (4 + 0) / 2),
        ("l1", nn.L1Loss, (2 + 0) / 2),
        ("huber", nn.HuberLoss, (0.5 * (2 - 0.5 / 2) + 0) / 2),  # delta 0.5: linear beyond it
    ],
)
def test_each_loss_is_the_criterion(loss, cls, value):
    net = built(loss=loss, huber_delta=0.5)
    assert type(net.criterion_) is cls
    got = net.get_loss(torch.tensor([[2.0], [1.0]]), torch.tensor([[0.0], [1.0]]))
    assert float(got) == pytest.approx(value)


def test_target_is_standardised_inside_fit_and_predict():
    X, y = XY
    net = fitted(epochs=3)
    shifted = fitted(X, y + 1000.0, epochs=3)
    assert shifted.target_mean_ == pytest.approx(y.mean() + 1000.0)
    np.testing.assert_allclose(shifted.predict(X) - 1000.0, net.predict(X), atol=1e-5)
    assert abs(float(np.mean(net.predict(X)) - y.mean())) < 0.2


def test_training_runs_in_float32():
    net = fitted(epochs=1)
    assert all(p.dtype == torch.float32 for p in net.module_.parameters())
    Xb, yb = next(iter(TensorBatches(type("D", (), {"X": np.ones((5, 3)), "y": np.ones((5, 1))})(), 2, shuffle=True)))
    assert Xb.dtype == yb.dtype == torch.float32


def test_batches_cover_each_row_once_and_drop_only_a_lone_training_row():
    data = type("D", (), {"X": np.arange(13.0).reshape(-1, 1), "y": None})()
    train = list(TensorBatches(data, 4, shuffle=True))
    assert [len(x) for x, _ in train] == [4, 4, 4]  # 13 = 3 * 4 + 1: the lone row waits
    assert len(set(torch.cat([x for x, _ in train]).reshape(-1).tolist())) == 12
    evaluation = list(TensorBatches(data, 4, shuffle=False))
    assert torch.cat([x for x, _ in evaluation]).reshape(-1).tolist() == list(range(13))
    assert len(TensorBatches(data, 4, shuffle=True)) == 3 and len(TensorBatches(data, 4)) == 4


# ------------------------------------------------------------------- binned head
def test_binned_head_classes_are_quantile_bins():
    X, y = XY
    net = fitted(head="binned", n_bins=8, epochs=1)
    assert layers(net, nn.Linear)[-1].out_features == 8 == len(net.bin_centers_)
    z = ((y - net.target_mean_) / net.target_scale_).astype(np.float32)
    classes = torch.bucketize(torch.from_numpy(z), net.inner_edges_).numpy()
    assert sorted(set(classes)) == list(range(8))
    assert np.bincount(classes).min() >= len(y) / 8 - 2  # quantile bins hold ~equal counts
    np.testing.assert_array_equal(classes, np.searchsorted(net.bin_edges_[1:-1], z, side="left"))


def test_binned_head_predicts_a_distribution_and_intervals():
    X, y = XY
    net = fitted(head="binned", n_bins=16, epochs=30, optimizer="adam", lr=0.01)
    assert type(net) is BinnedMLPRegressor and type(net.criterion_) is nn.CrossEntropyLoss
    probs = net.predict_proba(X)  # skorch applies the softmax for a cross-entropy criterion
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    pred = net.predict(X)
    edges = net.bin_edges()
    assert (pred >= edges[0]).all() and (pred <= edges[-1]).all()
    np.testing.assert_allclose(pred, probs.astype(np.float64) @ net.bin_values(), rtol=1e-6)
    lo, hi = net.predict_interval(X, coverage=0.8)
    assert (lo <= pred).all() and (pred <= hi).all()
    wide_lo, wide_hi = net.predict_interval(X, coverage=0.95)
    assert (wide_lo <= lo).all() and (hi <= wide_hi).all()
    assert np.corrcoef(pred, y)[0, 1] > 0.8  # it learned the target, not just its mean
    assert float(net.history[-1, "train_loss"]) < math.log(16)  # cross-entropy below uniform
    assert type(fitted(epochs=1)) is MLPRegressor  # head: regression


def test_a_fitted_net_survives_pickling():
    X, _ = XY
    for head in ("regression", "binned"):
        net = fitted(head=head, epochs=2, grad_clip=1.0)
        again = pickle.loads(pickle.dumps(net))
        np.testing.assert_array_equal(again.predict(X), net.predict(X))
        again.partial_fit(X, XY[1])  # keeps training on the first fit's target scale
        assert len(again.history) == 4  # two more epochs (max_epochs) on top of two
        assert abs(float(np.mean(again.predict(X))) - XY[1].mean()) < 0.3


# ------------------------------------------------------------------- weight averaging (SWA)
class WeightProbe(Callback):
    """Records a copy of every parameter at the end of each epoch."""

    def initialize(self):
        self.snapshots = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.snapshots.append([p.detach().clone() for p in net.module_.parameters()])


def test_weight_averaging_ends_with_the_mean_of_the_last_epochs_weights():
    probe, plain_probe = WeightProbe(), WeightProbe()
    averaged = fitted(epochs=6, swa_fraction=0.5, extra_callbacks=[("probe", probe)])
    plain = fitted(epochs=6, extra_callbacks=[("probe", plain_probe)])
    for i, param in enumerate(averaged.module_.parameters()):
        mean = torch.stack([snap[i] for snap in probe.snapshots[-3:]]).mean(dim=0)
        torch.testing.assert_close(param.detach(), mean)
        # Averaging does not change the path the optimizer takes, only the weights kept.
        torch.testing.assert_close(probe.snapshots[-1][i], plain_probe.snapshots[-1][i])
        torch.testing.assert_close(list(plain.module_.parameters())[i].detach(), plain_probe.snapshots[-1][i])
    assert not np.allclose(averaged.predict(XY[0]), plain.predict(XY[0]))


@pytest.mark.parametrize("epochs, fraction, averaged", [(100, 0.8, 80), (3, 0.8, 2), (10, 0.01, 1), (10, 0.0, 0)])
def test_swa_fraction_counts_the_last_epochs_averaged(epochs, fraction, averaged):
    assert config(epochs=epochs, swa_fraction=fraction).averaged_epochs() == averaged


def test_swa_lr_is_annealed_to_then_held_while_averaging():
    cosine = lr_trajectory(lr_schedule="cosine", swa_fraction=0.375, swa_lr=0.02).epochs  # the last 3 of 8
    expected = [0.02 + 0.08 * 0.5 * (1 + math.cos(math.pi * e / 5)) for e in range(5)] + [0.02] * 3
    np.testing.assert_allclose(cosine, expected, rtol=1e-6)
    np.testing.assert_allclose(lr_trajectory(swa_fraction=0.25, swa_lr=0.03).epochs, [0.1] * 6 + [0.03] * 2, rtol=1e-6)
    # swa_lr null: the schedule runs on unchanged through the averaged epochs.
    np.testing.assert_allclose(
        lr_trajectory(lr_schedule="cosine", swa_fraction=0.375).epochs,
        [0.1 * 0.5 * (1 + math.cos(math.pi * e / 8)) for e in range(8)],
        rtol=1e-6,
    )


def test_weight_averaging_recomputes_batch_norm_statistics_for_the_averaged_weights():
    X, y = synthetic(n=192)  # six full batches of 32: the mean of batch means is the mean
    net = fitted(X, y, epochs=6, swa_fraction=0.5, batch_norm=True)
    linear, norm = layers(net, nn.Linear)[0], layers(net, nn.BatchNorm1d)[0]
    with torch.no_grad():
        hidden = linear(torch.from_numpy(X))
    torch.testing.assert_close(norm.running_mean, hidden.mean(dim=0), rtol=1e-4, atol=1e-5)
    without = fitted(X, y, epochs=6, batch_norm=True)  # running stats of the training weights
    assert not torch.allclose(layers(without, nn.BatchNorm1d)[0].running_mean, norm.running_mean, atol=1e-3)


def test_weight_averaging_is_deterministic_for_a_seed():
    X, _ = XY
    kw = {"epochs": 6, "swa_fraction": 0.5, "swa_lr": 0.005, "lr_schedule": "cosine"}
    np.testing.assert_array_equal(fitted(seed=4, **kw).predict(X), fitted(seed=4, **kw).predict(X))
    assert not np.allclose(fitted(seed=4, **kw).predict(X), fitted(seed=5, **kw).predict(X))


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"swa_fraction": 1.0}, r"models\.m\.swa_fraction"),
        ({"swa_fraction": -0.1}, r"models\.m\.swa_fraction"),
        ({"swa_fraction": 0.0, "swa_lr": 0.01}, r"swa_lr .*swa_fraction > 0"),
        ({"swa_lr": 0.01, "lr_schedule": "onecycle"}, r"swa_lr .*lr_schedule.*'onecycle'"),
        ({"valid_fraction": 0.2, "early_stopping": {"enabled": True}}, r"swa_fraction .*early_stopping\.enabled"),
        ({"swa_lr": 0.0}, r"models\.m\.swa_lr"),
    ],
)
def test_weight_averaging_refuses_bad_params_naming_the_keys(bad, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_params({"models": {"m": {"kind": "mlp", "epochs": 5, **bad}}})
    assert "models.m" in str(err.value) and "\n" not in str(err.value)


# ------------------------------------------------------------------- divergence, device
def test_divergence_names_model_fold_and_epoch(small_xy):
    X, y = small_xy
    params = parse_params(
        {
            "models": {"wild": DIVERGING_MLP},
            "cv": {"folds": 2, "repeats": 1},
        }
    )
    with pytest.raises(TrainingError, match=r"model 'wild', fold r1f1: train_loss became (nan|inf) at epoch 1"):
        cross_validate("wild", params, X, y, X.head(5))
    with pytest.raises(TrainingError, match=r"model 'wild', refit: .*epoch 1.*models\.wild\.lr"):
        fit_estimator("wild", params.model("wild"), params, X, y, "refit")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_device_auto_resolves_to_cpu_here():
    assert resolve_device("auto", 4096, 4096) == "cpu"
    net = built(device="auto")
    assert net.device == "cpu"
    assert next(net.module_.parameters()).device.type == "cpu"


def test_device_auto_takes_the_gpu_only_for_large_steps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto", 64, 128) == "cpu"  # the default net: a GPU would be slower
    assert resolve_device("auto", AUTO_CUDA_MIN_BATCH_WIDTH // 512, 512) == "cuda"
    assert resolve_device("auto", AUTO_CUDA_MIN_BATCH_WIDTH // 512 - 1, 512) == "cpu"
    assert resolve_device("cpu", 10**6, 10**6) == "cpu"
    assert resolve_device("cuda", 1, 1) == "cuda"
    assert build_mlp(config(device="auto"), 0).device == "cpu"


def test_warmup_with_its_own_scheduler_is_refused():
    with pytest.raises(ConfigError, match="warmup_epochs"):
        parse_params({"models": {"m": {"kind": "mlp", "warmup_epochs": 2, "lr_schedule": "onecycle"}}})


# ------------------------------------------------------------------- classical models
CLASSICAL = {kind: entry.regressor.estimator for kind, entry in KINDS.items() if hasattr(entry.regressor, "estimator")}


@pytest.mark.parametrize("kind", sorted(CLASSICAL))
def test_classical_estimators_take_the_config_fields_as_params(kind):
    cfg = parse_params({"models": {"m": {"kind": kind}}}).model("m")
    estimator = build_regressor(cfg, seed=3)
    assert type(estimator) is CLASSICAL[kind]
    params = estimator.get_params()
    for field, value in cfg.model_dump(exclude={"kind"}).items():
        assert params[field] == value, field
    assert params.get("random_state", 3) == 3
