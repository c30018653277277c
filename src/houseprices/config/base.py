"""The base of every config section: unknown keys and infinities refused, values frozen."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    # Infinities and NaN break every fit they reach (`alpha: .inf`): refused at load.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class OffByDefault(Strict):
    enabled: bool = False


class OnByDefault(Strict):
    enabled: bool = True


Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
Count = Annotated[int, Field(ge=1)]
