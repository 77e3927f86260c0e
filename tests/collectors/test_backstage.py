"""Backstage catalog files: every corpus file read, its entities and relations counted by an
independent walk of the raw text; refs defaulted and compared as Backstage does; YAML 1.2;
``$text`` definitions read beside the file, never fetched nor read from outside its folder."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML

from clew.records import ApiDefinition, CatalogEntity, Checkpoint, DeclaredDependency, Quarantined
from collectors import Registry, Source, safe_yaml
from collectors.backstage import BackstageCollector, entity_ref, split_ref
from collectors.openapi import OpenApiCollector
from collectors.openapi import parse as parse_openapi
from collectors.openapi import read as read_openapi
from tests.conftest import corpus

#: The spec fields that declare relations, as the raw walk counts them.
RELATION_FIELDS = {
    "providesApis",
    "consumesApis",
    "dependsOn",
    "dependencyOf",
    "system",
    "subcomponentOf",
    "domain",
    "subdomainOf",
}


def backstage_files() -> list[Path]:
    return sorted(p for p in corpus("backstage").iterdir() if p.is_file())


def raw_entities(text: str) -> list[tuple[str, str]]:
    """(kind, name) of each document, from the text alone: documents split at ``---`` lines,
    each entity's top-level ``kind:`` and the ``name:`` under its ``metadata:``."""
    found = []
    for document in re.split(r"(?m)^---[ \t]*$", text):
        kind = re.search(r"(?m)^kind:[ \t]*(\S+)", document)
        name = re.search(r"(?m)^metadata:[ \t]*\n(?:[ \t]+.*\n)*?[ \t]+name:[ \t]*(\S+)", document)
        if kind and name:
            found.append((kind.group(1), name.group(1)))
    return found


def raw_relations(path: Path) -> Counter:
    """Targets per relation field, by walking the documents as plain YAML reads them."""
    counted: Counter = Counter()
    for document in YAML(typ="safe", pure=True).load_all(path.read_text()):
        for field, value in (document.get("spec") or {}).items():
            if field in RELATION_FIELDS:
                counted[field] += len(value) if isinstance(value, list) else 1
    return counted


def read(path: Path) -> list:
    return list(BackstageCollector().collect(Source(path)))


def of(records: list, kind: type) -> list:
    return [r for r in records if type(r) is kind]


@pytest.mark.parametrize("path", backstage_files(), ids=lambda p: p.name)
def test_every_corpus_file_is_read_with_the_entities_and_relations_a_raw_walk_counts(
    path: Path,
):
    records = read(path)
    assert of(records, Quarantined) == []
    entities = of(records, CatalogEntity)
    assert [(e.kind, e.name) for e in entities] == raw_entities(path.read_text())
    assert [e.document for e in entities] == list(range(1, len(entities) + 1))
    assert all(e.problems == () for e in entities)
    relations = Counter(d.field for d in of(records, DeclaredDependency))
    assert relations == raw_relations(path)
    apis = [e.ref for e in entities if e.kind == "API"]
    assert [d.api_ref for d in of(records, ApiDefinition)] == apis
    assert records[-1] == Checkpoint(path.stat().st_size)
    # Backstage is tried before OpenAPI, whose head test an inline definition would pass.
    detected = Registry([BackstageCollector(), OpenApiCollector()]).detect(path)
    assert detected is not None and detected.name == "backstage"


def test_openapi_corpus_files_are_not_taken_for_catalog_files():
    for path in sorted(p for p in corpus("openapi").iterdir() if p.is_file()):
        assert not BackstageCollector().detect(path.read_bytes()[:65536]), path.name


def test_specific_values_per_file():
    by_name = {p.name: read(p) for p in backstage_files()}

    demo = by_name["demo_catalog-info.yaml"]
    website, graphql = of(demo, CatalogEntity)
    assert (website.ref, website.type, website.lifecycle) == (
        "component:default/backstage-demo",
        "website",
        "experimental",
    )
    # "backstage/maintainers" is the group maintainers in the namespace backstage.
    assert website.owner == graphql.owner == "group:backstage/maintainers"
    assert orjson.loads(website.annotations)["github.com/project-slug"] == "backstage/demo"
    assert (graphql.ref, graphql.type, graphql.lifecycle) == (
        "api:default/demo-graphql",
        "graphql",
        "production",
    )
    # The API's own apiConsumedBy is not a field Backstage reads: one relation, the consumer's.
    assert [(d.from_ref, d.relation, d.to_ref) for d in of(demo, DeclaredDependency)] == [
        ("component:default/backstage-demo", "consumesApi", "api:default/demo-graphql")
    ]
    (schema,) = of(demo, ApiDefinition)
    assert (schema.location, schema.text) == ("https://demo.backstage.io/api/graphql/schema", None)
    assert schema.problems == (
        "$text 'https://demo.backstage.io/api/graphql/schema' is a URL: not fetched",
    )

    component = by_name["petstore-component.yaml"]
    (petstore,) = of(component, CatalogEntity)
    assert (petstore.kind, petstore.type, petstore.lifecycle, petstore.owner) == (
        "Component",
        "service",
        "production",
        "group:default/sre",
    )
    assert [(d.relation, d.to_ref) for d in of(component, DeclaredDependency)] == [
        ("providesApi", "api:default/petstore"),
        ("providesApi", "api:default/streetlights"),
        ("providesApi", "api:default/playback-order"),
        ("consumesApi", "api:default/searcher"),
    ]
    assert orjson.loads(petstore.links)[0]["url"] == "https://github.com/chahatd/backstage"

    api = by_name["petstore-api.yaml"]
    (petstore_api,) = of(api, CatalogEntity)
    assert (petstore_api.ref, petstore_api.owner, petstore_api.tags) == (
        "api:default/petstore",
        "group:default/team-c",
        ("store", "rest"),
    )
    (inline,) = of(api, ApiDefinition)
    assert (inline.spec_type, inline.location, inline.problems) == ("openapi", None, ())
    # The inline definition is an OpenAPI document the contract collector reads.
    operations = list(read_openapi(parse_openapi(inline.text.encode(), "petstore"), "h"))[1:]
    assert sorted(op.operation_id for op in operations) == ["createPets", "listPets", "showPetById"]

    streetlights = by_name["streetlights-api.yaml"]
    (lights,) = of(streetlights, CatalogEntity)
    assert (lights.type, lights.lifecycle, lights.owner, lights.tags) == (
        "asyncapi",
        "production",
        "group:default/team-c",
        ("mqtt",),
    )
    (asyncapi,) = of(streetlights, ApiDefinition)
    assert asyncapi.text.startswith("asyncapi: 2.0.0\n")
    # YAML 1.2: the command enum is the words on and off, not booleans.
    definition = safe_yaml.load(asyncapi.text, "streetlights")
    payload = definition["components"]["schemas"]["turnOnOffPayload"]
    assert payload["properties"]["command"]["enum"] == ["on", "off"]

    system = by_name["podcast-system.yaml"]
    (podcast,) = of(system, CatalogEntity)
    assert (podcast.ref, podcast.owner, podcast.domain) == (
        "system:default/podcast",
        "user:default/team-b",
        "domain:default/playback",
    )
    assert of(system, DeclaredDependency) == [
        DeclaredDependency(
            "system:default/podcast", "domain:default/playback", "partOf", podcast.ref, "domain"
        )
    ]


def write(folder: Path, text: str, name: str = "catalog-info.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_yaml_1_2_keeps_on_and_off_as_words(tmp_path: Path):
    text = (
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: switch}\n"
        "spec: {type: service, lifecycle: on, owner: off}\n"
    )
    (entity,) = of(read(write(tmp_path, text)), CatalogEntity)
    assert (entity.lifecycle, entity.owner) == ("on", "group:default/off")


API = """\
apiVersion: backstage.io/v1alpha1
kind: API
metadata: {{name: {name}}}
spec:
  type: openapi
  lifecycle: production
  owner: team-a
  definition: {definition}
"""


def definitions(folder: Path, *written: str) -> list[ApiDefinition]:
    text = "---\n".join(
        API.format(name=f"api-{i}", definition=definition) for i, definition in enumerate(written)
    )
    records = read(write(folder, text))
    assert of(records, Quarantined) == []
    return of(records, ApiDefinition)


def test_text_placeholders_read_files_in_the_folder_and_nothing_else(tmp_path: Path):
    folder = tmp_path / "repo" / "service"
    spec = "openapi: 3.0.0\ninfo: {title: Orders, version: '1'}\npaths: {}\n"
    write(folder / "specs", spec, "orders.yaml")
    write(tmp_path / "repo", "secret: 1\n", "outside.yaml")
    (folder / "linked.yaml").symlink_to(tmp_path / "repo" / "outside.yaml")
    found = definitions(
        folder,
        "{$text: ./specs/orders.yaml}",
        "{$text: specs/../specs/orders.yaml}",
        "{$text: ../outside.yaml}",
        "{$text: /etc/hostname}",
        "{$text: linked.yaml}",
        "{$text: 'https://example.com/orders.yaml'}",
        "{$text: ./missing.yaml}",
        "{$yaml: ./specs/orders.yaml}",
        "{}",
    )
    assert [(d.location, d.text) for d in found[:2]] == [
        ("./specs/orders.yaml", spec),
        ("specs/../specs/orders.yaml", spec),
    ]
    assert found[0].problems == found[1].problems == ()
    assert [d.text for d in found[2:]] == [None] * 7
    assert [d.problems for d in found[2:]] == [
        ("$text '../outside.yaml' leaves the catalog file's folder: not read",),
        ("$text '/etc/hostname' leaves the catalog file's folder: not read",),
        ("$text 'linked.yaml' leaves the catalog file's folder: not read",),
        ("$text 'https://example.com/orders.yaml' is a URL: not fetched",),
        ("$text './missing.yaml': cannot read: No such file or directory",),
        ("spec.definition: $yaml not read (a definition is text: $text reads it)",),
        ("spec.definition is neither text nor a $text placeholder",),
    ]


def test_refs_default_by_field_to_the_entitys_namespace_and_compare_lower_cased(tmp_path: Path):
    text = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: Checkout
  namespace: Shop
spec:
  type: service
  lifecycle: production
  owner: Team-A
  system: Storefront
  subcomponentOf: web
  providesApis: [Orders, default/Payments, API:Shop/orders]
  consumesApis: [group:x/odd]
  dependsOn: ["resource:orders-db", Cache, "component:default/auth"]
  dependencyOf: [resource:reports]
---
apiVersion: backstage.io/v1beta1
kind: resource
metadata: {name: orders-db, namespace: shop}
spec: {type: database, owner: "user:ops/Bob", dependencyOf: [component:checkout]}
"""
    records = read(write(tmp_path, text))
    checkout, database = of(records, CatalogEntity)
    assert (checkout.ref, checkout.namespace, checkout.name) == (
        "component:shop/checkout",
        "Shop",
        "Checkout",
    )
    assert (checkout.owner, checkout.system) == ("group:shop/team-a", "system:shop/storefront")
    assert checkout.problems == (
        "spec.dependsOn: 'Cache' names no kind (Backstage requires one here); read as a component",
    )
    assert (database.ref, database.owner) == ("resource:shop/orders-db", "user:ops/bob")
    declared = [
        (d.from_ref, d.relation, d.to_ref, d.field) for d in of(records, DeclaredDependency)
    ]
    assert declared == [
        ("component:shop/checkout", "partOf", "system:shop/storefront", "system"),
        ("component:shop/checkout", "partOf", "component:shop/web", "subcomponentOf"),
        ("component:shop/checkout", "providesApi", "api:shop/orders", "providesApis"),
        ("component:shop/checkout", "providesApi", "api:default/payments", "providesApis"),
        # API:Shop/orders is api:shop/orders again: declared once.
        ("component:shop/checkout", "consumesApi", "group:x/odd", "consumesApis"),
        ("component:shop/checkout", "dependsOn", "resource:shop/orders-db", "dependsOn"),
        ("component:shop/checkout", "dependsOn", "component:shop/cache", "dependsOn"),
        ("component:shop/checkout", "dependsOn", "component:default/auth", "dependsOn"),
        # dependencyOf is the dependsOn it implies, in the other direction.
        ("resource:shop/reports", "dependsOn", "component:shop/checkout", "dependencyOf"),
        ("component:shop/checkout", "dependsOn", "resource:shop/orders-db", "dependencyOf"),
    ]
    assert {d.declared_by for d in of(records, DeclaredDependency)} == {
        checkout.ref,
        database.ref,
    }


def test_refs_that_cannot_be_read_are_noted_and_skipped(tmp_path: Path):
    text = (
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: web}\n"
        "spec: {owner: [a, b], consumesApis: [':x', 'ns/', 'api:/y', {kind: API}, ok]}\n"
    )
    records = read(write(tmp_path, text))
    (web,) = of(records, CatalogEntity)
    assert web.owner == "group:default/a"
    assert web.problems == (
        "spec.consumesApis: ':x' is not of the form [<kind>:][<namespace>/]<name>",
        "spec.consumesApis: 'ns/' is not of the form [<kind>:][<namespace>/]<name>",
        "spec.consumesApis: 'api:/y' is not of the form [<kind>:][<namespace>/]<name>",
        "spec.consumesApis: {'kind': 'API'} is not an entity ref",
        "spec.owner names 2 entities; the first is kept",
    )
    assert [d.to_ref for d in of(records, DeclaredDependency)] == ["api:default/ok"]


def test_split_ref_follows_backstage():
    assert split_ref("team-a") == (None, None, "team-a")
    assert split_ref("user:team-b") == ("user", None, "team-b")
    assert split_ref("backstage/maintainers") == (None, "backstage", "maintainers")
    assert split_ref("Component:Ns/Name") == ("Component", "Ns", "Name")
    # A "/" before the first ":" ends the namespace; the rest is the name.
    assert split_ref("ns/name:with:colons") == (None, "ns", "name:with:colons")
    assert entity_ref("Component", "Ns", "Name") == "component:ns/name"


@given(
    st.text(alphabet="abAB-_.09", min_size=1, max_size=8),
    st.text(alphabet="abAB-09", min_size=1, max_size=8),
    st.text(alphabet="abAB-_.09", min_size=1, max_size=8),
)
def test_a_written_ref_splits_back_into_its_parts(kind: str, namespace: str, name: str):
    assert split_ref(f"{kind}:{namespace}/{name}") == (kind, namespace, name)
    assert split_ref(f"{namespace}/{name}") == (None, namespace, name)
    assert split_ref(name) == (None, None, name)


@given(st.text(alphabet=":/ab", max_size=10))
def test_any_text_is_a_ref_or_a_value_error(text: str):
    try:
        kind, namespace, name = split_ref(text)
    except ValueError:
        return
    assert name and kind != "" and namespace != ""
    written = (f"{kind}:" if kind is not None else "") + (
        f"{namespace}/" if namespace is not None else ""
    )
    assert written + name == text


def test_bad_documents_are_quarantined_alone_and_the_rest_of_the_file_read(tmp_path: Path):
    entity = "apiVersion: backstage.io/v1alpha1\nkind: {kind}\nmetadata: {{name: {name}}}\n"
    text = "---\n".join(
        [
            entity.format(kind="Group", name="team-a"),
            "- a list\n",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n",
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {title: nameless}\n",
            "apiVersion: backstage.io/v1alpha1\nmetadata: {name: kindless}\n",
            entity.format(kind="Domain", name="shop"),
            entity.format(kind="group", name="Team-A"),
            "",  # a trailing "---" leaves an empty document: nothing to read
        ]
    )
    path = write(tmp_path, text)
    records = read(path)
    assert [(e.ref, e.document) for e in of(records, CatalogEntity)] == [
        ("group:default/team-a", 1),
        ("domain:default/shop", 6),
    ]
    assert [(q.position, q.reason) for q in of(records, Quarantined)] == [
        ("document 2", "not a catalog entity: the document is not a mapping"),
        ("document 3", "not a Backstage catalog entity: apiVersion 'apps/v1'"),
        ("document 4", "catalog entity without a metadata.name"),
        ("document 5", "catalog entity without a kind"),
        ("document 7", "entity group:default/team-a is also document 1 of this file"),
    ]
    assert '"Deployment"' in of(records, Quarantined)[1].excerpt
    assert records[-1] == Checkpoint(len(text.encode()))


def test_a_file_that_is_not_yaml_is_quarantined_whole_with_where(tmp_path: Path):
    text = (
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: a}\n---\n"
        "apiVersion: backstage.io/v1alpha1\nkind: [Component\n"
    )
    records = read(write(tmp_path, text))
    (bad, checkpoint) = records
    assert bad.position == "line 7 column 1" and bad.reason.startswith("invalid YAML:")
    assert checkpoint == Checkpoint(len(text))
    (twice,) = of(read(write(tmp_path, "a: 1\na: 2\n", "twice.yaml")), Quarantined)
    assert twice.position == "line 2 column 1" and "duplicate key" in twice.reason


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"apiVersion: backstage.io/v1alpha1\nkind: Component\n", True),
        (b"\xef\xbb\xbf# catalog\n---\napiVersion: 'backstage.io/v1beta1'\n", True),
        (b'{"apiVersion": "backstage.io/v1alpha1", "kind": "API"}', True),
        (b"kind: Template\napiVersion: backstage.io/v1beta3 # scaffolder\n", True),
        (b"apiVersion: apps/v1\nkind: Deployment\n", False),
        (b"apiVersion: backstage.io/v2\n", False),
        (b"openapi: 3.0.0\ninfo: {title: backstage.io/v1alpha1}\n", False),
    ],
)
def test_detect_looks_for_a_backstage_api_version(head: bytes, expected: bool):
    assert BackstageCollector().detect(head) is expected
