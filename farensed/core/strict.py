"""The one pydantic base class of every on-disk format: unknown keys are errors.

Schemas are built at first use (defer_build), so a client verb that reads one file does
not pay for building the models of all the others at import time.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
