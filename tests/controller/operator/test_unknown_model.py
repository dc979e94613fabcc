"""An unknown ``forecast.model`` is InvalidSpec when the policy is parsed, never a failure at forecast time.

Three gates, each tested: the CRD's enum (the emulator answers 422 as the API
server would, from the generated schema), ``parse_policy_spec`` (the message
names ``spec.forecast.model`` and lists the registry's names), and the
operator through the strict emulator serving an older CRD without the enum
(a cluster upgraded operator-first, or a model removed in a newer release):
InvalidSpec condition and Warning event, Ready False, nothing scaled, and the
forecaster factory never called.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from controller.operator.app import build_operator
from controller.operator.clock import FakeClock
from controller.operator.crds import all_crds
from controller.operator.resources import parse_policy_spec
from forecasting import registry
from forecasting.base import Forecaster
from tests.controller.operator.harness import EVENT_START, TraceDemand, policy_spec
from tests.kube.fixtures import NAMESPACE, api_client_for, create, deployment, scaling_policy


def _expected() -> str:
    """The names the message lists: read at test time (other tests may have registered a baseline since import)."""
    return ", ".join(registry.names())


def _bad_spec() -> dict[str, Any]:
    return policy_spec(forecast={"model": "prophet-typo", "step": "1m", "history": "3d", "horizon": "3h"})


def test_parse_names_the_field_and_lists_the_known_models() -> None:
    with pytest.raises(ValueError) as info:
        parse_policy_spec(_bad_spec())
    assert str(info.value) == f"spec.forecast.model: unknown model 'prophet-typo'; expected one of {_expected()}"
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", registry.names())
def test_every_registered_model_parses(name: str) -> None:
    spec = parse_policy_spec(policy_spec(forecast={"model": name, "step": "1m", "history": "3d"}))
    assert spec.forecast.model == name


def test_the_crd_enum_is_the_registry() -> None:
    crd = all_crds()["scalingpolicies.yaml"]
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert schema["properties"]["forecast"]["properties"]["model"]["enum"] == list(registry.BUILTIN)


def test_the_api_server_rejects_an_unknown_model(kube: Any, api: Any) -> None:
    with pytest.raises(ApiException) as info:
        create(api, scaling_policy("typo", _bad_spec()))
    assert info.value.status == 422
    assert "forecast.model" in str(info.value.body) and "prophet-typo" in str(info.value.body)


def test_the_operator_reports_invalid_spec_and_never_forecasts(kube: Any, api: Any) -> None:
    emu, url = kube
    older = copy.deepcopy(all_crds()["scalingpolicies.yaml"])
    schema = older["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    del schema["properties"]["forecast"]["properties"]["model"]["enum"]
    emu.register_crd(older)  # the API server accepts any name: the operator is the last gate
    create(api, deployment("slots-api", 4))
    create(api, scaling_policy("slots", _bad_spec()))
    asked: list[str] = []

    def spy(name: str, **params: Any) -> Forecaster:
        asked.append(name)
        return registry.create(name, **params)

    clock = FakeClock(EVENT_START - timedelta(minutes=30))
    op = build_operator(api_client_for(url), namespace=None, demand=TraceDemand(), clock=clock,
                        leader_election=False, forecaster=spy)
    report = op.loop.step()
    assert report is not None
    assert [(o.name, o.reason) for o in report.outcomes] == [("slots", "InvalidSpec")]
    assert asked == []  # no model was built, no forecast attempted
    obj = emu.get("pitboss.dev/v1alpha1", "scalingpolicies", NAMESPACE, "slots")
    assert obj is not None
    conds = {c["type"]: c for c in obj["status"]["conditions"]}
    message = f"spec.forecast.model: unknown model 'prophet-typo'; expected one of {_expected()}"
    assert conds["InvalidSpec"]["status"] == "True" and conds["InvalidSpec"]["message"] == message
    assert conds["Ready"]["status"] == "False" and conds["Ready"]["reason"] == "InvalidSpec"
    warnings = [e for e in emu.list("v1", "events", NAMESPACE) if e["type"] == "Warning"]
    assert [(e["involvedObject"]["name"], e["reason"], e["message"]) for e in warnings] == \
        [("slots", "InvalidSpec", message)]
    replicas = emu.get("apps/v1", "deployments", NAMESPACE, "slots-api")
    assert replicas is not None and replicas["spec"]["replicas"] == 4  # nothing scaled on a bad spec
