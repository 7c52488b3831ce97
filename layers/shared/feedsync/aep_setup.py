"""``feedsync aep setup`` and ``feedsync aep check``: the XDM schema, its field group and identity,
and the dataset the ``aep`` destination writes to - created once, found after.

Idempotent by title: a field group ``feedsync CRM fields (<class>)`` - one per class, as a field
group is meant for one class (``meta:intendedToExtend``) -, a schema ``feedsync CRM (<class>)``
and a dataset ``feedsync CRM (<class>)`` are looked up before anything is created; a second
run finds them and changes nothing. ``--class profile`` uses the XDM Individual Profile class
with the ``identityMap`` (ECID as primary identity: the Person ID CJA joins on); ``--class
lookup`` uses a class of the tenant's own, ``feedsync CRM lookup``, built on the record
*behaviour* (a behaviour is not a class), with a ``<tenant>.feedsync.ecid`` field as primary
identity (an identity descriptor, namespace ECID), for a CJA lookup dataset keyed by ECID.

When the mapping gains a field, setup extends the field group with it (an additive change:
the Schema Registry's schema evolution allows it) and says so; a field whose type changed
cannot be changed in place, and setup says what to do instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from feedsync.adobe.aep import AepClient
from feedsync.daily.aep_mapping import AepField
from feedsync.errors import FeedsyncError

PROFILE = "https://ns.adobe.com/xdm/context/profile"
IDENTITY_MAP = "https://ns.adobe.com/xdm/context/identitymap"
RECORD = "https://ns.adobe.com/xdm/data/record"  # the record *behaviour*
CLASSES = ("profile", "lookup")
LOOKUP_CLASS = "feedsync CRM lookup"
LEGACY_FIELD_GROUP = "feedsync CRM fields"  # one group for any class (before per-class groups)


def field_group_title(kind: str) -> str:
    return f"feedsync CRM fields ({kind})"


@dataclass
class SetupResult:
    schema_id: str = ""
    field_group_id: str = ""
    dataset_id: str = ""
    identity: str = ""
    created: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"schema_id": self.schema_id, "field_group_id": self.field_group_id,
                "dataset_id": self.dataset_id, "identity": self.identity,
                "created": self.created, "found": self.found,
                "changed": bool(self.created)}  # fmt: skip


def _properties(fields: dict[str, AepField], tenant: str, lookup: bool) -> dict[str, Any]:
    """The field group's properties: each path under ``_<tenant>``, typed as mapped."""
    root: dict[str, Any] = {}
    leaves = [(f.path, f.type) for f in fields.values()]
    if lookup:
        leaves.append((f"_{tenant}.feedsync.ecid", "string"))
    for path, kind in leaves:
        parts = path.split(".")
        if parts[0] != f"_{tenant}":
            raise FeedsyncError(f"aep.fields path {path} must start with _{tenant} (your tenant)")
        node = root
        for name in parts[:-1]:
            node = node.setdefault(name, {"type": "object", "properties": {}})["properties"]
        node[parts[-1]] = {"type": kind, **({"format": "date"} if kind == "date" else {})}
        if kind == "date":
            node[parts[-1]]["type"] = "string"
    return root


def _find(client: AepClient, kind: str, title: str) -> str:
    for item in client.tenant_list(kind):
        if item.get("title") == title:
            return str(item["$id"])
    return ""


def _class(client: AepClient, kind: str, result: SetupResult) -> str:
    """The class the schema is of: XDM Individual Profile, or the tenant's lookup class (the
    record behaviour), found or created."""
    if kind == "profile":
        return PROFILE
    found = _find(client, "classes", LOOKUP_CLASS)
    if found:
        result.found.append(f"class {LOOKUP_CLASS!r}")
        return found
    definition = {"title": LOOKUP_CLASS, "type": "object",
                  "description": "feedsync: CRM attributes keyed by the Experience Cloud ID",
                  "allOf": [{"$ref": RECORD}]}  # fmt: skip
    result.created.append(f"class {LOOKUP_CLASS!r}")
    return str(client.tenant_create("classes", definition)["$id"])


def _field_group(
    client: AepClient, kind: str, cls: str, properties: dict[str, Any], result: SetupResult
) -> str:
    """The class's field group, found (the one-for-all legacy group too, when it is meant for
    this class) and extended with fields the mapping gained, or created."""
    title = field_group_title(kind)
    found = _find(client, "fieldgroups", title)
    if not found and kind == "profile":
        legacy = _find(client, "fieldgroups", LEGACY_FIELD_GROUP)
        meant = client.tenant_get("fieldgroups", legacy).get("meta:intendedToExtend") if (
            legacy) else None  # fmt: skip
        found, title = (legacy, LEGACY_FIELD_GROUP) if meant and cls in meant else ("", title)
    if found:
        _extend(client, found, title, properties, result)
        return found
    group = {
        "title": title, "type": "object",
        "description": "CRM attributes feedsync writes, keyed by the Experience Cloud ID",
        "meta:intendedToExtend": [cls],
        "definitions": {"crm": {"properties": properties}},
        "allOf": [{"$ref": "#/definitions/crm"}],
    }  # fmt: skip
    result.created.append(f"field group {title!r}")
    return str(client.tenant_create("fieldgroups", group)["$id"])


def _extend(
    client: AepClient, group_id: str, title: str, properties: dict[str, Any], result: SetupResult
) -> None:
    """Add the mapped fields the group lacks (JSON Patch ``add``, objects first); a field
    whose type differs cannot change in place."""
    group = client.tenant_get("fieldgroups", group_id)
    have: dict[str, str] = {}
    for definition in (group.get("definitions") or {}).values():
        have.update(_leaves(definition))
    wanted = _leaves({"properties": properties})
    changed = [f"{p} ({have[p]} -> {t})" for p, t in wanted.items() if p in have and have[p] != t]
    if changed:
        raise FeedsyncError(
            f"field group {title!r}: {', '.join(changed)} - a field's type cannot change in "
            "place (schema evolution is additive): map the CRM field to a new path"
        )
    missing = [p for p in wanted if p not in have]
    if not missing:
        result.found.append(f"field group {title!r}")
        return
    ops = _add_ops(group, missing, properties)
    client.tenant_patch("fieldgroups", group_id, ops)
    result.created.append(f"fields {', '.join(missing)} in field group {title!r}")


def _add_ops(group: dict[str, Any], missing: list[str], properties: dict[str, Any]) -> list[Any]:
    """JSON Patch ``add`` operations for the missing leaves, creating the objects on the way."""
    definitions = group.get("definitions") or {}
    name = next(iter(definitions), "crm")
    node = definitions.get(name, {}).get("properties") or {}
    ops: list[dict[str, Any]] = []
    for path in missing:
        parts, pointer, have, spec = path.split("."), f"/definitions/{name}/properties", node, {
            "properties": properties}  # fmt: skip
        for depth, part in enumerate(parts):
            spec = spec["properties"][part]
            pointer += f"/{part}"
            if part not in have:
                ops.append({"op": "add", "path": pointer, "value": spec})
                have[part] = spec  # later paths see it
                break
            have = have[part].setdefault("properties", {}) if depth < len(parts) - 1 else have
            pointer += "/properties" if depth < len(parts) - 1 else ""
    return ops


def setup(
    client: AepClient, fields: dict[str, AepField], kind: str, say: Callable[[str], None]
) -> SetupResult:
    if kind not in CLASSES:
        raise FeedsyncError(f"--class {kind}: choose profile or lookup")
    tenant = client.tenant_id()
    if not tenant:
        raise FeedsyncError("the Schema Registry names no tenant: check the product profile")
    lookup = kind == "lookup"
    result = SetupResult(
        identity="ECID (identityMap)" if not lookup else f"_{tenant}.feedsync.ecid"
    )
    cls = _class(client, kind, result)
    properties = _properties(fields, tenant, lookup)
    result.field_group_id = _field_group(client, kind, cls, properties, result)
    title = f"feedsync CRM ({kind})"
    result.schema_id = _find(client, "schemas", title)
    if result.schema_id:
        result.found.append(f"schema {title!r}")
    else:
        parts = [{"$ref": cls}, {"$ref": result.field_group_id}]
        if not lookup:
            parts.append({"$ref": IDENTITY_MAP})
        schema = {"title": title, "type": "object", "allOf": parts,
                  "description": "feedsync: CRM attributes per Experience Cloud ID"}  # fmt: skip
        result.schema_id = str(client.tenant_create("schemas", schema)["$id"])
        result.created.append(f"schema {title!r}")
        if lookup:
            client.tenant_create("descriptors", {
                "@type": "xdm:descriptorIdentity", "xdm:sourceSchema": result.schema_id,
                "xdm:sourceVersion": 1, "xdm:sourceProperty": f"/_{tenant}/feedsync/ecid",
                "xdm:namespace": "ECID", "xdm:property": "xdm:code", "xdm:isPrimary": True,
            })  # fmt: skip
            result.created.append("identity descriptor (ECID, primary)")
    named = client.datasets_named(title)
    if named:
        result.dataset_id = next(iter(named))
        result.found.append(f"dataset {title!r}")
    else:
        result.dataset_id = client.create_dataset(title, result.schema_id)
        result.created.append(f"dataset {title!r}")
    for line in result.created:
        say(f"created {line}")
    for line in result.found:
        say(f"found {line} (unchanged)")
    return result


def _leaves(node: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for name, spec in (node.get("properties") or {}).items():
        path = f"{prefix}.{name}" if prefix else name
        if spec.get("type") == "object" or "properties" in spec:
            out.update(_leaves(spec, path))
        else:
            out[path] = "date" if spec.get("format") == "date" else str(spec.get("type"))
    return out


def schema_fields(client: AepClient, schema: dict[str, Any]) -> dict[str, str]:
    """Dotted path -> XDM type of the schema's own field groups (the tenant's)."""
    fields: dict[str, str] = {}
    for part in schema.get("allOf", []):
        ref = str(part.get("$ref", "")) if isinstance(part, dict) else ""
        if "/fieldgroups/" in ref or "/mixins/" in ref:
            group = client.tenant_get("fieldgroups", ref)
            for definition in (group.get("definitions") or {}).values():
                fields.update(_leaves(definition))
    return fields


Check = tuple[str, bool, str]


def check(
    client: AepClient, aep: Any, connections: Callable[[str], list[dict[str, Any]]]
) -> list[Check]:
    """One line per thing the aep destination relies on; stops where the next cannot be read."""
    out: list[Check] = []
    try:
        dataset = client.dataset(aep.dataset_id)
    except FeedsyncError as exc:
        return [("dataset", False, f"{aep.dataset_id} in sandbox {aep.sandbox}: {exc}")]
    if not dataset:
        return [("dataset", False, f"no dataset {aep.dataset_id} in sandbox {aep.sandbox}: "
                 "run feedsync aep setup and put its dataset id in the mapping")]  # fmt: skip
    schema_id = str((dataset.get("schemaRef") or {}).get("id", ""))
    out.append(
        ("dataset", True, f"{dataset.get('name')} ({aep.dataset_id}) in sandbox {aep.sandbox}")
    )
    out.append(_permissions(client, aep.sandbox))
    schema = client.tenant_get("schemas", schema_id)
    fields = schema_fields(client, schema)
    wrong = [f"{f.path} ({f.type})" for f in aep.fields.values() if fields.get(f.path) != f.type]
    said = (f"missing or of another type: {', '.join(wrong)} - add them to the schema "
            "(feedsync aep setup creates a matching one)") if wrong else (
        f"{len(aep.fields)} mapped fields present")  # fmt: skip
    out.append(("schema fields", not wrong, f"{schema.get('title')}: {said}"))
    out.append(_identity(client, aep, schema, schema_id))
    found = connections(aep.dataset_id)
    names = [str(c.get("name") or c.get("id")) for c in found]
    out.append(("CJA connection", bool(found), f"in {', '.join(names)}" if found else (
        f"no CJA connection includes dataset {aep.dataset_id}: in CJA, Connections > your "
        "connection > Add datasets, pick it"
        + (" as a profile dataset with Person ID ECID (identityMap)" if not aep.identity_path
           else f" as a lookup dataset, key {aep.identity_path} matching the ECID of the events")
    )))  # fmt: skip
    return out


# What the aep destination and `aep setup` do in the sandbox, by Access Control's names
# (access-control.yaml; Admin Console > Experience Platform > the product profile > Permissions)
PERMISSIONS = {
    "/permissions/manage-datasets": "Manage Datasets (batches: create, upload, complete)",
    "/permissions/manage-schemas": "Manage Schemas (`aep setup` adds a mapped field)",
}


def _permissions(client: AepClient, sandbox: str) -> Check:
    try:
        held = client.effective_policies(list(PERMISSIONS))
    except FeedsyncError as exc:
        return ("permissions", False, f"could not read them in sandbox {sandbox}: {exc}")
    missing = [what for path, what in PERMISSIONS.items() if not held.get(path)]
    if missing:
        return ("permissions", False, f"the credential lacks, in sandbox {sandbox}: "
                f"{'; '.join(missing)} - add them to its product profile (Admin Console > "
                "Experience Platform > the profile > Permissions)")  # fmt: skip
    names = ", ".join(what.split(" (")[0] for what in PERMISSIONS.values())
    return ("permissions", True, f"{names} in sandbox {sandbox}")


def _identity(client: AepClient, aep: Any, schema: dict[str, Any], schema_id: str) -> Check:
    refs = {str(p.get("$ref")) for p in schema.get("allOf", []) if isinstance(p, dict)}
    if not aep.identity_path:
        ok = IDENTITY_MAP in refs or PROFILE in refs
        return ("identity", ok, "ECID in the identityMap (primary)" if ok else
                "the schema has no identityMap: use the XDM Individual Profile class")  # fmt: skip
    wanted = "/" + aep.identity_path.replace(".", "/")
    for item in client.tenant_list("descriptors"):
        if item.get("xdm:sourceSchema") == schema_id:
            full = client.tenant_get("descriptors", str(item.get("@id") or item.get("$id") or ""))
            if full.get("xdm:sourceProperty") == wanted and full.get("xdm:namespace") == "ECID":
                return ("identity", True, f"{aep.identity_path}: primary identity, ECID")
    return ("identity", False, f"no primary ECID identity descriptor on {aep.identity_path}")
