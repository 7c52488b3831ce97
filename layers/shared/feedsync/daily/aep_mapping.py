"""The mapping file's ``aep`` section: where each CRM field goes in the dataset's XDM schema.

```json
"aep": {"dataset_id": "6564a9c1f0e4a12a2b3c4d5e", "sandbox": "prod",
        "identity_namespace": "ECID",
        "fields": {"Account_Type__c": {"path": "_acme.crm.accountType", "type": "string"},
                   "Annual_Revenue__c": {"path": "_acme.crm.revenue", "type": "number"}}}
```
``type``: ``string`` (default), ``number``, ``integer``, ``boolean`` or ``date`` (XDM's
``YYYY-MM-DD``), as the schema declares the field. A value that does not fit its type is a
rejected row with its reason, never sent.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

TYPES = ("string", "number", "integer", "boolean", "date")
_PATH = re.compile(r"_[A-Za-z0-9]+(\.[A-Za-z][A-Za-z0-9_]*)+")
_TRUE, _FALSE = frozenset({"true", "yes", "1"}), frozenset({"false", "no", "0"})


class TypeProblem(ValueError):
    pass


@dataclass(frozen=True)
class AepField:
    path: str  # under the tenant namespace, e.g. _acme.crm.accountType
    type: str = "string"


@dataclass(frozen=True)
class AepMapping:
    dataset_id: str
    sandbox: str
    fields: dict[str, AepField]  # CRM field -> where and how
    identity_namespace: str = "ECID"
    identity_path: str = ""  # a lookup dataset: the ECID in this field, not the identityMap

    @classmethod
    def parse(cls, data: Any, problems: list[str]) -> AepMapping | None:
        if data is None:
            return None
        if not isinstance(data, dict):
            problems.append("aep: expected an object with dataset_id, sandbox and fields")
            return None
        fields: dict[str, AepField] = {}
        for crm_field, spec in (data.get("fields") or {}).items():
            spec = {"path": spec} if isinstance(spec, str) else spec
            path, kind = (spec or {}).get("path"), (spec or {}).get("type", "string")
            if not isinstance(path, str) or not _PATH.fullmatch(path):
                problems.append(
                    f"aep.fields.{crm_field}: path {path!r} must be like _tenant.group.field"
                )
            elif kind not in TYPES:
                problems.append(
                    f"aep.fields.{crm_field}: type {kind!r}: choose from {', '.join(TYPES)}"
                )
            else:
                fields[str(crm_field)] = AepField(path, kind)
        if not fields:
            problems.append("aep.fields: map at least one CRM field to an XDM path")
        dataset, sandbox = data.get("dataset_id"), data.get("sandbox", "prod")
        # No dataset yet is the state between writing the section and `feedsync aep setup`
        # (which reads it): only the aep destination needs it (destinations/aep.py says so).
        if dataset is not None and (not isinstance(dataset, str) or not dataset.strip()):
            problems.append("aep.dataset_id: the dataset's id (feedsync aep setup prints it)")
        if not isinstance(sandbox, str) or not sandbox.strip():
            problems.append("aep.sandbox: the Experience Platform sandbox name, e.g. prod")
        namespace = str(data.get("identity_namespace") or "ECID")
        identity_path = str(data.get("identity_path") or "")
        if identity_path and not _PATH.fullmatch(identity_path):
            problems.append(
                f"aep.identity_path: {identity_path!r} must be like _tenant.group.field"
            )
        return cls(str(dataset or ""), str(sandbox or ""), fields, namespace, identity_path)

    def record(self, visitor: str, values: dict[str, str]) -> dict[str, Any]:
        """One XDM record: the visitor's identity and the typed fields (TypeProblem if one does
        not fit its type). Empty values are left out, never sent as empty strings."""
        out: dict[str, Any] = {}
        if self.identity_path:
            _put(out, self.identity_path, visitor)
        else:
            out["identityMap"] = {self.identity_namespace: [{"id": visitor, "primary": True}]}
        for crm_field, spec in self.fields.items():
            text = values.get(crm_field, "")
            if text != "":
                _put(out, spec.path, typed(text, spec.type, crm_field))
        return out


def _put(record: dict[str, Any], path: str, value: Any) -> None:
    node = record
    *parents, leaf = path.split(".")
    for name in parents:
        node = node.setdefault(name, {})
    node[leaf] = value


def typed(text: str, kind: str, name: str) -> Any:
    try:
        if kind == "number":
            value = float(text)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
            return value
        if kind == "integer":
            return int(text)
        if kind == "boolean":
            low = text.strip().lower()
            if low in _TRUE or low in _FALSE:
                return low in _TRUE
            raise ValueError
        if kind == "date":
            return dt.date.fromisoformat(text.strip()[:10]).isoformat()
    except ValueError:
        raise TypeProblem(f"{name}: {text!r} is not a {kind}") from None
    return text
