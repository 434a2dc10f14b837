"""Prompt templates live as YAML files in the top-level ``prompts`` package and are rendered strictly."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml
from jinja2 import Environment, StrictUndefined, TemplateError
from pydantic import BaseModel, ConfigDict

from assistant.errors import ConfigError


class PromptFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    templates: dict[str, str]


_ENV = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


@cache
def load_prompts(name: str) -> PromptFile:
    """Load ``prompts/<name>.yaml``; raises ConfigError when it is missing or malformed."""
    try:
        raw = resources.files("prompts").joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise ConfigError(f"prompt file prompts/{name}.yaml is missing; reinstall the package") from exc
    try:
        return PromptFile.model_validate(yaml.safe_load(raw))
    except Exception as exc:
        raise ConfigError(f"prompt file prompts/{name}.yaml is malformed: {exc}") from exc


def render(name: str, key: str, **variables: object) -> str:
    """Render template ``key`` of prompt file ``name``; an undefined variable is an error, not a blank."""
    prompts = load_prompts(name)
    if key not in prompts.templates:
        raise ConfigError(f"prompts/{name}.yaml has no template '{key}'")
    try:
        return _ENV.from_string(prompts.templates[key]).render(**variables)
    except TemplateError as exc:
        raise ConfigError(f"prompts/{name}.yaml template '{key}': {exc}") from exc
