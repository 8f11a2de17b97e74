"""The operator's limits: tightened, never loosened, by a run; set by the work pool alone."""

from __future__ import annotations

import pytest

from tasks.errors import ConfigError, SafetyRefusal
from tasks.operator_limits import check_job_variables, set_in
from tasks.settings import load_settings

PROD = {"bucket": "prod-bucket", "prefix": "tmp/logs/", "aws_credentials_block": "prod-aws"}


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


class TestJobVariables:
    def test_finds_limits_set_in_env_or_as_dotted_keys(self) -> None:
        assert set_in({"env": {"ENFORCE_APPROVAL": "false", "LOG_LEVEL": "DEBUG"}}) == {
            "ENFORCE_APPROVAL"
        }
        assert set_in({"env.ALLOWED_TARGETS": "x/"}) == {"ALLOWED_TARGETS"}
        assert set_in({"env": {"LOG_LEVEL": "DEBUG"}, "command": "x"}) == set()
        assert set_in(None) == set()

    def test_refuses_a_run_or_deployment_that_sets_one(self) -> None:
        check_job_variables({"env": {"LOG_LEVEL": "DEBUG"}}, {})  # not a limit: fine

        with pytest.raises(SafetyRefusal) as refused:
            check_job_variables({}, {"env": {"MAX_DELETIONS_CEILING": "9"}})

        assert refused.value.guard == "operator_limits"
        assert "set MAX_DELETIONS_CEILING" in str(refused.value)
