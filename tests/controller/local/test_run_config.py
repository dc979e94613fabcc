"""A local run's config validates on construction: an unknown model fails before anything starts."""

from __future__ import annotations

import pytest

from controller.errors import InputError
from controller.local.run import RunConfig
from forecasting import registry


def test_an_unknown_model_names_the_field_and_the_known_models() -> None:
    with pytest.raises(InputError) as info:
        RunConfig(model="typo")
    assert info.value.field == "model"
    assert str(info.value) == f"field 'model': unknown model 'typo'; expected one of {', '.join(registry.names())}"


@pytest.mark.parametrize("name", registry.names())
def test_every_registered_model_is_accepted(name: str) -> None:
    assert RunConfig(model=name).model == name
