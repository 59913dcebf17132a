"""Matching a file's headers to the data dictionary.

Headers match a variable's name or one of its declared aliases, ignoring
case, surrounding blanks and the difference between spaces, dashes and
underscores. Unknown columns are reported; missing required columns reject the
file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..registry import Registry


def normalise(header: str) -> str:
    return re.sub(r"[\s\-\.]+", "_", header.strip().lstrip("\ufeff").lower()).strip("_")


@dataclass
class HeaderMap:
    mapping: dict[str, str] = field(default_factory=dict)   # file column -> variable name
    unknown: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    missing_required: list[str] = field(default_factory=list)
    missing_optional: list[str] = field(default_factory=list)


def map_headers(headers: list[str], registry: Registry) -> HeaderMap:
    lookup: dict[str, str] = {}
    for variable in registry.variables:
        for spelling in (variable.name, *variable.aliases):
            lookup[normalise(spelling)] = variable.name
    result = HeaderMap()
    for header in headers:
        name = lookup.get(normalise(header))
        if name is None:
            result.unknown.append(header)
        elif name in result.mapping.values():
            result.duplicated.append(header)
        else:
            result.mapping[header] = name
    found = set(result.mapping.values())
    for variable in registry.variables:
        if variable.name not in found:
            (result.missing_required if variable.required else result.missing_optional).append(variable.name)
    return result
