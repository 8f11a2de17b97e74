"""The operator's limits: tightened, never loosened, by a run; set by the work pool alone."""

from __future__ import annotations

from typing import Any

import pytest
from prefect.workers.process import ProcessWorker

from tasks.errors import ConfigError, SafetyRefusal
from tasks.guards.operator_limits import (
    OPEN_JOB_VARIABLES,
    check_job_variables,
    limit_variables,
    set_in,
)
from tasks.settings import (
    RunSettings,
    is_operator_limit,
    is_parameter,
    limited_by,
    load_settings,
    operator_limits,
)

PROD = {"bucket": "prod-bucket", "prefix": "tmp/logs/", "aws_credentials_block": "prod-aws"}
#: The job variables of Prefect's own process pool, read from the installed Prefect: one it
#: adds later is covered too.
PROCESS_JOB_VARIABLES = sorted(
    ProcessWorker.get_default_base_job_template()["variables"]["properties"]
)


@pytest.fixture
def prod_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_TARGETS", "prod-bucket/tmp/, prod-archive/old/")
    monkeypatch.setenv("ALLOWED_CREDENTIALS_BLOCKS", "prod-aws")
    monkeypatch.setenv("ENFORCE_APPROVAL", "true")
    monkeypatch.setenv("MAX_DELETIONS_CEILING", "1000")


@pytest.mark.usefixtures("prod_worker")
class TestSettingsWithinLimits:
    def test_an_executing_run_needs_approval_and_is_capped_whatever_it_asks(self) -> None:
        settings = load_settings(
            {**PROD, "dry_run": False, "require_approval": False, "max_deletions": 5000}
        )

        assert (settings.require_approval, settings.max_deletions) == (True, 1000)

    def test_a_run_may_tighten_the_ceiling_and_a_dry_run_needs_no_approval(self) -> None:
        settings = load_settings({**PROD, "max_deletions": 10})

        assert (settings.require_approval, settings.max_deletions) == (False, 10)

    @pytest.mark.parametrize(
        ("given", "problem"),
        [
            ({"bucket": "other-bucket"}, "prefix: is not under a bucket and prefix"),
            ({"prefix": "data/"}, "prefix: is not under a bucket and prefix"),
            ({"bucket": "prod-archive", "prefix": "tmp/"}, "prefix: is not under a bucket"),
            ({"aws_credentials_block": "dev-aws"}, "aws_credentials_block: is not a credentials"),
            ({"aws_credentials_block": None}, "aws_credentials_block: is not a credentials"),
        ],
    )
    def test_refuses_a_target_or_block_outside_the_environment(
        self, given: dict[str, object], problem: str
    ) -> None:
        with pytest.raises(ConfigError) as refused:
            load_settings({**PROD, **given})

        assert problem in str(refused.value)

    def test_accepts_every_allowed_target(self) -> None:
        settings = load_settings({**PROD, "bucket": "prod-archive", "prefix": "old/2024/"})

        assert settings.allowed_targets == ("prod-bucket/tmp/", "prod-archive/old/")


def test_without_limits_a_run_is_as_it_asks() -> None:
    settings = load_settings({**PROD, "bucket": "any-bucket", "dry_run": False})

    assert (settings.require_approval, settings.max_deletions) == (False, None)


class TestDaskAddresses:
    """A cluster's answers are unpickled by the run: only the operator says which it may use."""

    def test_a_run_is_refused_its_own_cluster_when_the_operator_allows_none(self) -> None:
        with pytest.raises(ConfigError) as refused:
            load_settings({**PROD, "dask_address": "tcp://someone-elses-scheduler:8786"})

        (problem,) = refused.value.problems
        assert problem.startswith("dask_address: is not one the operator allows here")
        assert "ALLOWED_DASK_ADDRESSES" in problem
        assert "someone-elses-scheduler" not in str(refused.value)

    def test_a_run_may_pick_only_among_the_operators_clusters_when_listed(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ALLOWED_DASK_ADDRESSES", "tcp://dask-a:8786, tcp://dask-b:8786")

        picked = load_settings({**PROD, "dask_address": "tcp://dask-b:8786"})
        with pytest.raises(ConfigError) as refused:
            load_settings({**PROD, "dask_address": "tcp://dask-c:8786"})

        assert picked.dask_address == "tcp://dask-b:8786"
        assert "ALLOWED_DASK_ADDRESSES" in str(refused.value)

    def test_the_operators_own_cluster_is_used_and_may_be_named_when_set_in_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://operators-dask:8786")

        assert load_settings(PROD).dask_address == "tcp://operators-dask:8786"
        named = load_settings({**PROD, "dask_address": "tcp://operators-dask:8786"})
        assert named.dask_address == "tcp://operators-dask:8786"
        with pytest.raises(ConfigError, match="ALLOWED_DASK_ADDRESSES"):
            load_settings({**PROD, "dask_address": "tcp://another-dask:8786"})

    def test_an_operators_list_is_refused_without_its_values_when_it_holds_no_address(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ALLOWED_DASK_ADDRESSES", "tcp://dask-a:8786, dask-b-typo")

        with pytest.raises(ConfigError) as refused:
            load_settings(PROD)

        assert refused.value.problems == [
            "allowed_dask_addresses (from ALLOWED_DASK_ADDRESSES): must be Dask scheduler "
            "addresses like tcp://host:8786"
        ]
        assert "dask-b-typo" not in str(refused.value)

    def test_the_limit_is_refused_when_a_run_gives_it_as_a_parameter(self) -> None:
        with pytest.raises(ConfigError) as refused:
            load_settings({**PROD, "allowed_dask_addresses": "tcp://mine:8786"})

        assert refused.value.problems == [
            "allowed_dask_addresses: not a parameter: an operator's limit, from the worker's "
            "ALLOWED_DASK_ADDRESSES alone"
        ]


class TestDeclarations:
    def test_no_operator_limit_is_a_parameter_when_declared(self) -> None:
        fields = RunSettings.model_fields

        assert {"allowed_dask_addresses", "max_deletions_ceiling"} <= set(operator_limits())
        assert not [name for name in operator_limits() if is_parameter(fields[name])]
        assert "ALLOWED_DASK_ADDRESSES" in limit_variables()

    def test_a_limited_parameter_names_a_limit_declared_before_it_when_declared(self) -> None:
        # Its validator reads the limit: pydantic validates in declaration order.
        order = list(RunSettings.model_fields)
        limited = {
            name: limit
            for name, field in RunSettings.model_fields.items()
            if (limit := limited_by(field)) is not None
        }

        assert limited == {"dask_address": "allowed_dask_addresses"}
        for name, limit in limited.items():
            assert is_parameter(RunSettings.model_fields[name])
            assert is_operator_limit(RunSettings.model_fields[limit])
            assert order.index(limit) < order.index(name)


def closed_value(name: str) -> Any:
    """A value a deployment or a run could give a job variable of a process pool."""
    return {
        "command": "sh -c 'env -u MAX_DELETIONS_CEILING python -m prefect.engine'",
        "working_dir": "/srv/someone-elses-checkout",
        "env": {"PYTHONPATH": "/srv/someone-elses-checkout"},
        "labels": {"team": "someone"},
        "stream_output": False,
    }.get(name, "a-value")


class TestJobVariables:
    def test_names_env_keys_and_dotted_keys_one_by_one_when_set(self) -> None:
        assert set_in({"env": {"ENFORCE_APPROVAL": "false", "LOG_LEVEL": "DEBUG"}}) == {
            "env.ENFORCE_APPROVAL",
            "env.LOG_LEVEL",
        }
        assert set_in({"env.ALLOWED_TARGETS": "x/", "command": "x"}) == {
            "env.ALLOWED_TARGETS",
            "command",
        }
        assert set_in({"env": {}}) == set_in({}) == set_in(None) == set()

    def test_refuses_a_run_or_deployment_that_sets_an_operators_limit_in_env(self) -> None:
        with pytest.raises(SafetyRefusal) as refused:
            check_job_variables({}, {"env": {"MAX_DELETIONS_CEILING": "9"}})

        assert refused.value.guard == "operator_limits"
        assert "set env.MAX_DELETIONS_CEILING" in str(refused.value)
        assert "9" not in str(refused.value).replace("MAX_DELETIONS_CEILING", "")

    @pytest.mark.parametrize(
        "name", [name for name in PROCESS_JOB_VARIABLES if name not in OPEN_JOB_VARIABLES]
    )
    @pytest.mark.parametrize("made_by", ["run", "deployment"])
    def test_refuses_every_job_variable_the_pool_does_not_leave_open_when_set(
        self, name: str, made_by: str
    ) -> None:
        job_variables = {name: closed_value(name)}
        run, deployment = (job_variables, {}) if made_by == "run" else ({}, job_variables)

        with pytest.raises(SafetyRefusal) as refused:
            check_job_variables(run, deployment)

        assert f"the run's job variables set {name}" in str(refused.value)
        assert "the operator's limits and the run's process come from the work pool alone" in str(
            refused.value
        )

    def test_lets_a_run_start_when_neither_it_nor_its_deployment_sets_any(self) -> None:
        check_job_variables({}, {})
        check_job_variables(None, None)
