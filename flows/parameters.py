"""The flow's parameters, made from the settings model: the signature Prefect validates and shows
as the UI's form, with each field's bounds and help text."""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import TypeAdapter, WithJsonSchema
from pydantic.fields import FieldInfo

from tasks.settings import MARKERS, Size, default_text, environment_variables, parameters

Function = TypeVar("Function", bound=Callable[..., Any])


def setting_parameters(function: Function) -> Function:
    """Give a function that takes `**parameters` one keyword parameter per run setting.

    Each is optional (empty falls back to its environment variable, then to its default), typed
    as its setting, with the setting's bounds in its JSON schema (the Prefect server refuses a
    run outside them before it exists; a local call reaches `load_settings`, which reports every
    problem at once) and its help in the docstring's Args section, which Prefect shows in the
    UI. Apply it under `@flow`.
    """
    signature = inspect.Signature(
        [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=a)
            for name, a in ((name, annotation(field)) for name, field in parameters().items())
        ],
        return_annotation=inspect.signature(function).return_annotation,
    )
    function.__signature__ = signature  # type: ignore[attr-defined]
    function.__doc__ = inspect.cleandoc(function.__doc__ or "") + "\n\n" + args_section()
    return function


def value_type(field: FieldInfo) -> Any:
    """The type of a setting's values: X for `X | None`."""
    annotation = field.annotation
    if get_origin(annotation) in (Union, type(int | None)):
        kept = [arg for arg in get_args(annotation) if arg is not type(None)]
        return kept[0] if len(kept) == 1 else Union[tuple(kept)]  # noqa: UP007 - built at runtime
    return annotation


def annotation(field: FieldInfo) -> Any:
    """The setting's type, or None; its schema carries the setting's bounds and pattern."""
    base = value_type(field)
    if any(isinstance(mark, Size) for mark in field.metadata):
        base = int | str  # "10MiB" as well as 10485760: the settings read either
    constraints = [m for m in field.metadata if not isinstance(m, MARKERS)]
    schema = TypeAdapter(Annotated[(base, *constraints)] if constraints else base).json_schema()
    if isinstance(field.json_schema_extra, dict):
        schema.update(field.json_schema_extra)
    return Annotated[base | None, WithJsonSchema({"anyOf": [schema, {"type": "null"}]})]


def help_text(name: str, field: FieldInfo) -> str:
    """The setting's description, then where it falls back to: 'Text (env A, then B, default
    C).'"""
    fallbacks = []
    if environment_variables(name):
        fallbacks.append("env " + ", then ".join(environment_variables(name)))
    if not field.is_required() and field.default is not None:
        fallbacks.append(f"default {default_text(field)}")
    text = str(field.description)
    return f"{text[:-1]} ({', '.join(fallbacks)})." if fallbacks else text


def args_section() -> str:
    """The docstring's Args section: one entry per parameter, wrapped as Google style wants."""
    lines = ["Args:"]
    for name, field in parameters().items():
        lines += textwrap.wrap(
            f"{name}: {help_text(name, field)}",
            width=96,
            initial_indent="    ",
            subsequent_indent="        ",
            break_on_hyphens=False,
        )
    return "\n".join(lines)
