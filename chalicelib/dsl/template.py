"""Template: a free map with a name; other artifacts `import` it (deep-merged under them)."""
from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ConfigDict

from .base import Artifact


class Template(Artifact):
    """Free content: every key besides name/kind/metadata is kept as given (JSON values)."""

    model_config = ConfigDict(extra="allow", defer_build=True)
    kind: ClassVar[str] = "templates"

    @property
    def content(self) -> dict[str, Any]:
        return dict(self.__pydantic_extra__ or {})


def deep_merge(base: Any, override: Any) -> Any:
    """Maps merge key by key, the override (the importing document) wins; anything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return override
