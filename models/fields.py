"""Field metadata for layer specs: what the property editor is built from.

A spec field declared with `param(...)` carries its range, choices, unit and a one-sentence
tooltip, so a new hyperparameter needs no GUI code.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldInfo:
    """What the editor needs to know about one spec field.

    `per_axis` fields hold one int per spatial axis (kernel size, stride, ...); `per_side` fields
    hold two per axis, begins then ends (explicit pads). `label` is the human name.
    `used_when` = (other field, value): the field matters only while the other holds that value
    (pads only with explicit padding), so an editor can grey it out otherwise.
    """
    label: str
    tooltip: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""
    per_axis: bool = False
    per_side: bool = False
    step: float | None = None
    used_when: tuple[str, str] | None = None


def param(default: Any, label: str, tooltip: str, **info: Any) -> Any:
    """A dataclass field whose metadata holds a FieldInfo (see FieldInfo for the keywords)."""
    return dataclasses.field(default=default,
                             metadata={"info": FieldInfo(label=label, tooltip=tooltip, **info)})


def field_info(spec_type: type, name: str) -> FieldInfo:
    """The FieldInfo of one field of a spec class."""
    for f in dataclasses.fields(spec_type):
        if f.name == name:
            return f.metadata["info"]
    raise KeyError(f"{spec_type.__name__} has no field {name!r}")


def editable_fields(spec_type: type) -> list[tuple[str, FieldInfo]]:
    """(name, info) for every field the person can edit, in declaration order."""
    return [(f.name, f.metadata["info"]) for f in dataclasses.fields(spec_type)
            if "info" in f.metadata]
