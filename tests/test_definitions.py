"""Every definition loads: each entrypoint named in prefect.yaml is a flow taking its parameters."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.flows import Flow, load_flow_from_entrypoint

ROOT = Path(__file__).resolve().parents[1]
DEPLOYMENTS: list[dict[str, Any]] = yaml.safe_load((ROOT / "prefect.yaml").read_text())[
    "deployments"
]


def test_prefect_yaml_names_at_least_one_deployment() -> None:
    assert [d["name"] for d in DEPLOYMENTS], "prefect.yaml defines no deployment"


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_entrypoint_loads_and_takes_the_parameters_when_deployed(
    deployment: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    flow = load_flow_from_entrypoint(deployment["entrypoint"])

    assert isinstance(flow, Flow)
    accepted = set(inspect.signature(flow.fn).parameters)
    assert set(deployment.get("parameters", {})) <= accepted
    env = deployment["work_pool"]["job_variables"]["env"]
    assert (ROOT / env["PREFECT_LOGGING_CONFIG_PATH"]).is_file()
