"""The data-layer map's types: schema, relationships, endpoints.

Builders in this package fill them from ORM models, migrations, SQL files and route declarations; rules
read them. They are plain frozen dataclasses (not pydantic) because they are built for every file of a
large tree and never cross a phase boundary as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SchemaSource = Literal["sqlalchemy", "django", "alembic", "django_migration", "sql"]


@dataclass(frozen=True)
class Column:
    name: str
    type: str = ""  # as written: "String(255)", "VARCHAR(255)", "CharField(max_length=20)"
    nullable: bool = True
    primary_key: bool = False
    unique: bool = False
    indexed: bool = False  # an index of its own (index=True, db_index=True)
    foreign_key: str | None = None  # "table.column"
    path: str = ""
    line: int = 0
    attribute: str = ""  # the model attribute, when it differs from the column name


@dataclass(frozen=True)
class Index:
    table: str
    columns: tuple[str, ...]
    name: str = ""
    unique: bool = False
    where: str = ""  # partial index predicate, if any
    path: str = ""
    line: int = 0


@dataclass
class Table:
    name: str
    columns: dict[str, Column] = field(default_factory=dict)
    indexes: list[Index] = field(default_factory=list)
    model: str = ""  # class name of the ORM model, if any
    path: str = ""
    line: int = 0
    source: SchemaSource = "sql"

    def has_index_leading(self, columns: tuple[str, ...]) -> bool:
        """True when some index (or PK/unique/indexed column) starts with exactly these columns, in any order."""
        wanted = set(columns)
        for index in self.all_indexes():
            if set(index.columns[: len(columns)]) == wanted:
                return True
        return False

    def all_indexes(self) -> list[Index]:
        """Declared indexes plus the implicit ones: primary key, unique and index=True columns."""
        implicit = [
            Index(table=self.name, columns=(c.name,), unique=c.unique or c.primary_key, path=c.path, line=c.line)
            for c in self.columns.values()
            if c.primary_key or c.unique or c.indexed
        ]
        pk = tuple(c.name for c in self.columns.values() if c.primary_key)
        if len(pk) > 1:
            implicit.append(Index(table=self.name, columns=pk, unique=True))
        return [*self.indexes, *implicit]


RelationshipKind = Literal["many_to_one", "one_to_many", "many_to_many", "one_to_one"]


@dataclass(frozen=True)
class Relationship:
    model: str  # class name that owns the attribute
    attribute: str  # attribute that loads the related rows ("author", "comments", "book_set")
    target: str  # class name loaded
    kind: RelationshipKind
    lazy: str = "select"  # SQLAlchemy lazy= value; Django: "select"
    path: str = ""
    line: int = 0


@dataclass(frozen=True)
class Model:
    name: str  # class name
    table: str
    path: str
    line: int
    framework: Literal["sqlalchemy", "django"]


@dataclass(frozen=True)
class Endpoint:
    """A function that serves HTTP requests."""

    path: str  # file
    line: int  # the `def` line
    decorator_line: int  # first decorator line (== line when none)
    function: str
    route: str  # "/api/posts/<int:id>"
    methods: tuple[str, ...]
    framework: Literal["flask", "fastapi", "django"]
    decorators: tuple[str, ...] = ()  # dotted names of every decorator, as written
    dependencies: tuple[str, ...] = ()  # FastAPI Depends(...) names, Django mixins

    @property
    def is_list(self) -> bool:
        """GET on a collection (no trailing path parameter)."""
        last = self.route.rstrip("/").rsplit("/", 1)[-1]
        return "GET" in self.methods and not last.startswith(("<", "{"))


@dataclass
class Schema:
    tables: dict[str, Table] = field(default_factory=dict)
    models: dict[str, Model] = field(default_factory=dict)  # by class name
    relationships: list[Relationship] = field(default_factory=list)

    def table_of_model(self, class_name: str) -> Table | None:
        model = self.models.get(class_name)
        return self.tables.get(model.table) if model else None

    def relationship(self, model: str, attribute: str) -> Relationship | None:
        for rel in self.relationships:
            if rel.model == model and rel.attribute == attribute:
                return rel
        return None

    def relationship_attributes(self) -> set[str]:
        return {rel.attribute for rel in self.relationships}
