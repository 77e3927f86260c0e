"""Records of a service catalog (Backstage): its entities, the dependencies they declare, and
the API definitions they carry.

Kept here until the store is wired for them; they then join the other records in
``clew.records``, unchanged. An entity ref is Backstage's string form ``kind:namespace/name``,
lower-cased as Backstage's ``stringifyEntityRef`` writes it, so two refs name the same entity
exactly when they are equal.
"""

from __future__ import annotations

from typing import NamedTuple


class Relation:
    """The declared relations kept, in Backstage's words (its forward direction only: a
    ``dependencyOf`` is kept as the ``dependsOn`` it implies)."""

    PROVIDES_API = "providesApi"  # component -> API it serves
    CONSUMES_API = "consumesApi"  # component -> API it calls
    DEPENDS_ON = "dependsOn"  # component or resource -> component or resource it needs
    PART_OF = "partOf"  # component / API / resource -> system, system -> domain, ...

    ALL = (PROVIDES_API, CONSUMES_API, DEPENDS_ON, PART_OF)


class CatalogEntity(NamedTuple):
    """One entity of a catalog file, as its document states it."""

    ref: str  # "component:default/petstore": its own ref, lower-cased
    kind: str  # as written: "Component", "API", "System", "Domain", "Group", "Resource", ...
    namespace: str  # as written; "default" when the document names none
    name: str  # as written
    title: str | None
    description: str | None
    type: str | None  # spec.type: "service", "website", "openapi", "database", ...
    lifecycle: str | None  # spec.lifecycle: "production", "experimental", "deprecated", ...
    owner: str | None  # spec.owner as a ref ("group:default/team-a")
    system: str | None  # spec.system as a ref (components, APIs, resources)
    domain: str | None  # spec.domain as a ref (systems)
    tags: tuple[str, ...]
    annotations: str | None  # metadata.annotations as a JSON object
    links: str | None  # metadata.links as a JSON array
    document: int  # which document of the file, from 1
    problems: tuple[str, ...]  # what could not be read as written: a ref without a kind, ...


class DeclaredDependency(NamedTuple):
    """A relation one entity's document declares between two entities."""

    from_ref: str
    to_ref: str
    relation: str  # Relation
    declared_by: str  # the ref of the entity whose document says so
    field: str  # the spec field that says so: "consumesApis", "dependencyOf", "system", ...


class ApiDefinition(NamedTuple):
    """The definition an API entity carries: written inline, or read from a file beside the
    catalog file (``$text: ./openapi.yaml``)."""

    api_ref: str
    spec_type: str | None  # spec.type: "openapi", "asyncapi", "graphql", "grpc", ...
    location: str | None  # the ``$text`` target as written; None for a definition inline
    text: str | None  # None when it could not be read (see problems)
    problems: tuple[str, ...]  # a URL not fetched, a path leaving the folder, a missing file, ...


CatalogRecord = CatalogEntity | DeclaredDependency | ApiDefinition
