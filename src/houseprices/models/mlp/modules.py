"""The torch side of the MLP: the ``nn.Module`` that ``kind: mlp`` trains and its weight
initialisation. Nothing here knows about skorch or the config."""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}
LEAKY_SLOPE = 0.01  # nn.LeakyReLU's default negative slope


class GaussianNoise(nn.Module):
    """Additive input noise at training time only (a data-side regulariser)."""

    def __init__(self, std: float):
        super().__init__()
        self.std = std

    def forward(self, x):
        if self.training and self.std > 0:
            return x + torch.randn_like(x) * self.std
        return x


def init_weights(
    module: nn.Module, scheme: str, std: float = 0.01, bias: float = 0.0, activation: str = "relu"
) -> None:
    """Initialise every Linear layer (the config refuses all-zero weights); He/Kaiming
    scales by the gain of ``activation``."""
    nonlinearity = {"leaky_relu": "leaky_relu", "tanh": "tanh", "sigmoid": "sigmoid"}.get(activation, "relu")
    slope = LEAKY_SLOPE if activation == "leaky_relu" else 0.0
    initialise = {
        "xavier_normal": nn.init.xavier_normal_,
        "xavier_uniform": nn.init.xavier_uniform_,
        "he_normal": lambda w: nn.init.kaiming_normal_(w, a=slope, nonlinearity=nonlinearity),
        "he_uniform": lambda w: nn.init.kaiming_uniform_(w, a=slope, nonlinearity=nonlinearity),
        "normal": lambda w: nn.init.normal_(w, 0.0, std),
    }[scheme]
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            initialise(layer.weight)
            if layer.bias is not None:
                nn.init.constant_(layer.bias, bias)


class MLP(nn.Module):
    """Fully connected net: [Linear -> (BatchNorm) -> activation -> (Dropout)] * depth -> Linear."""

    def __init__(
        self,
        n_inputs=1,
        n_outputs=1,
        hidden=(128,),
        activation="relu",
        batch_norm=False,
        dropout=0.0,
        input_dropout=0.0,
        input_noise=0.0,
        init="he_normal",
        init_std=0.01,
        bias_init=0.0,
    ):
        super().__init__()
        rates = list(dropout) if isinstance(dropout, (list, tuple)) else [dropout] * len(hidden)
        layers: list[nn.Module] = []
        if input_noise > 0:
            layers.append(GaussianNoise(input_noise))
        if input_dropout > 0:
            layers.append(nn.Dropout(input_dropout))
        width = n_inputs
        for units, rate in zip(hidden, rates, strict=True):
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


class EmbeddingMLP(nn.Module):
    """:class:`MLP` whose inputs at ``categorical`` (column positions) are category codes:
    column j's code c (0: unknown or unseen category; a code beyond ``cardinalities[j]``
    also maps to 0) picks row ``offsets[j] + c`` of one shared ``nn.Embedding`` (one lookup
    for all columns, cheaper than one table per column), and the learned vectors of
    ``embedding_dim`` numbers replace the codes before the first Linear layer. The other
    columns pass through as numbers."""

    def __init__(self, n_inputs=1, n_outputs=1, categorical=(), cardinalities=(), embedding_dim=4, **mlp):
        super().__init__()
        categorical = list(categorical)
        numeric = [i for i in range(n_inputs) if i not in set(categorical)]
        sizes = torch.as_tensor(list(cardinalities), dtype=torch.long)
        self.register_buffer("numeric", torch.as_tensor(numeric, dtype=torch.long))
        self.register_buffer("codes", torch.as_tensor(categorical, dtype=torch.long))
        self.register_buffer("limits", sizes)
        self.register_buffer("offsets", torch.cumsum(sizes, 0) - sizes)
        self.embeddings = nn.Embedding(max(1, int(sizes.sum())), embedding_dim)
        nn.init.normal_(self.embeddings.weight, 0.0, 0.01)
        self.mlp = MLP(n_inputs=len(numeric) + len(categorical) * embedding_dim, n_outputs=n_outputs, **mlp)

    def forward(self, x):
        codes = x[:, self.codes].long()
        codes = torch.where((codes >= 0) & (codes < self.limits), codes, torch.zeros_like(codes))
        vectors = self.embeddings(codes + self.offsets).flatten(1)
        return self.mlp(torch.cat([x[:, self.numeric], vectors], dim=1))
