"""The flow's parameters come from the settings model: names, types, bounds, choices and help."""

from __future__ import annotations

import inspect
from typing import Any

import annotated_types
import pytest
from prefect.utilities.callables import parameter_schema
from pydantic.fields import FieldInfo

from flows.parameters import help_text
from flows.s3_housekeeping import s3_housekeeping
from tasks.settings import RunSettings, environment_variables, parameters

#: annotated_types constraint -> the JSON schema keyword the UI's form checks.
BOUNDS = {
    annotated_types.Ge: ("minimum", "ge"),
    annotated_types.Le: ("maximum", "le"),
    annotated_types.Gt: ("exclusiveMinimum", "gt"),
    annotated_types.Lt: ("exclusiveMaximum", "lt"),
}


@pytest.fixture(scope="module")
def properties() -> dict[str, Any]:
    """The flow's parameters as the Prefect server and UI see them."""
    return dict(parameter_schema(s3_housekeeping).model_dump()["properties"])


def accepted(properties: dict[str, Any], name: str) -> dict[str, Any]:
    """A parameter's schema for a value (the other branch of its anyOf is the empty value)."""
    (schema,) = [s for s in properties[name]["anyOf"] if s.get("type") != "null"]
    return dict(schema)


def test_parameters_are_exactly_the_settings_marked_as_parameters_when_the_flow_is_built() -> None:
    signature = inspect.signature(s3_housekeeping.fn)

    assert list(signature.parameters) == list(parameters())
    assert all(p.default is None for p in signature.parameters.values())
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in signature.parameters.values())
    # Deployment-wide settings stay in the environment: never a run's parameter.
    assert {"delete_concurrency", "task_retries", "allow_future_as_of"}.isdisjoint(
        signature.parameters
    )


@pytest.mark.parametrize("name", list(parameters()))
def test_form_carries_the_settings_bounds_when_rendered(
    properties: dict[str, Any], name: str
) -> None:
    field: FieldInfo = RunSettings.model_fields[name]
    schema = accepted(properties, name)

    for constraint in field.metadata:
        for kind, (keyword, attribute) in BOUNDS.items():
            if isinstance(constraint, kind):
                assert schema[keyword] == getattr(constraint, attribute)
    if isinstance(field.json_schema_extra, dict):
        assert field.json_schema_extra.items() <= schema.items()


@pytest.mark.parametrize("name", list(parameters()))
def test_form_shows_the_settings_help_with_its_fallbacks_when_rendered(
    properties: dict[str, Any], name: str
) -> None:
    description = " ".join(properties[name]["description"].split())

    assert description == help_text(name, RunSettings.model_fields[name])
    assert description.startswith(str(RunSettings.model_fields[name].description)[:-1])
    for variable in environment_variables(name):
        assert variable in description


def test_form_offers_choices_and_bounds_when_a_setting_has_them(
    properties: dict[str, Any],
) -> None:
    assert accepted(properties, "environment")["enum"] == ["dev", "staging", "prod"]
    assert accepted(properties, "versions")["enum"] == ["current", "noncurrent", "all"]
    assert accepted(properties, "older_than_days") == {
        "type": "integer",
        "minimum": 1,
        "maximum": 36500,
    }
    assert accepted(properties, "max_plan_age_hours")["exclusiveMinimum"] == 0
    assert accepted(properties, "as_of")["format"] == "date-time"
    assert accepted(properties, "notify_topic_arn")["pattern"].startswith("^arn:")


def test_help_names_the_default_and_every_environment_variable_when_there_are_several() -> None:
    region = help_text("region", RunSettings.model_fields["region"])

    assert region == (
        "The bucket's AWS region (env AWS_DEFAULT_REGION, then AWS_REGION, default us-east-1)."
    )


def test_flow_validates_a_local_call_against_the_generated_signature_when_called() -> None:
    from prefect.exceptions import ParameterBindError

    with pytest.raises(ParameterBindError):
        s3_housekeeping(bucket="b-bucket", prefix="tmp/", older_then_days=3)
