"""The one strict pydantic base: config and result models forbid unknown keys, so a typo in a task file or a
plugin's options is an error naming the field, never a silently ignored setting."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Strict"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
