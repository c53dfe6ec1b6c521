"""The n_plus_one fix: eager loading added to the query that feeds a loop (SQLAlchemy options, Django
select_related/prefetch_related), split out of n_plus_one.py."""

from __future__ import annotations

import ast

import libcst as cst
from tuber.phases.datamap.model import Relationship
from tuber.phases.rules.base import SourceFile
from tuber.phases.rules.database import _codemod as cm
from tuber.phases.rules.database import _queries as q


def add_eager_loading(file: SourceFile, origin: q.Origin, paths: dict[str, str],
                      rels: dict[tuple[str, str], Relationship]) -> str | None:
    """The file with eager loading for `paths` added to the query `origin.builder` builds."""
    assert origin.builder is not None
    where = cm.span(file.text, origin.builder)
    wanted = [p for p in sorted(paths) if not any(o.startswith(p + ".") for o in paths)]  # longest paths only
    if origin.framework == "django":
        select: list[str] = []
        prefetch: list[str] = []
        for path in wanted:
            kinds = _kinds(origin.model, path, rels)
            if kinds is None:
                return None
            forward = all(k in ("many_to_one", "one_to_one") for k in kinds)
            (select if forward else prefetch).append('"' + path.replace(".", "__") + '"')
        edits: list[tuple[str, list[str]]] = [(m, a) for m, a in (("select_related", select),
                                                                  ("prefetch_related", prefetch)) if a]
        return cm.replace_nodes(file.text, [(where, (cst.BaseExpression,), lambda n: _chain_all(n, edits))])
    options: list[str] = []
    loaders: set[str] = set()
    in_scope = _top_level_names(file)
    imports_needed: list[tuple[str, str]] = []
    for path in wanted:
        parts = path.split(".")
        model, option = origin.model, ""
        for i, part in enumerate(parts):
            rel = rels.get((model, part))
            owner = origin.model_expr if i == 0 else model
            if rel is None:
                return None
            if i and model not in in_scope:
                source = _import_source(file, origin.model)
                if source is None:
                    return None
                imports_needed.append((source, model))
                in_scope.add(model)
            if ".".join(parts[: i + 1]) in origin.eager and i < len(parts) - 1:
                loader = "defaultload"
            else:
                loader = "selectinload" if rel.kind in ("one_to_many", "many_to_many") else "joinedload"
            option = f"{option}.{loader}({owner}.{part})" if option else f"{loader}({owner}.{part})"
            loaders.add(loader)
            model = rel.target
        options.append(option)
    text = cm.replace_nodes(file.text, [(where, (cst.BaseExpression,), lambda n: cm.chain_call(n, "options", options))])
    if text is None:
        return None
    for module, name in imports_needed:  # the related model, imported the way the query's model is
        text = cm.ensure_import(text, module, [name])
    return cm.ensure_import(text, "sqlalchemy.orm", sorted(loaders))


def _import_source(file: SourceFile, model: str) -> str | None:
    """The module `model` is imported from in `file` (".models", "app.models"), if it is imported by name."""
    for node in file.tree.body:
        if isinstance(node, ast.ImportFrom) and any(a.name == model and a.asname is None for a in node.names):
            return "." * node.level + (node.module or "")
    return None


def _chain_all(node: cst.CSTNode, edits: list[tuple[str, list[str]]]) -> cst.CSTNode:
    for method, args in edits:
        node = cm.chain_call(node, method, args)
    return node


def _kinds(model: str, path: str, rels: dict[tuple[str, str], Relationship]) -> list[str] | None:
    """The relationship kinds along a dotted path from `model`, or None when a step is not a relationship."""
    kinds: list[str] = []
    for part in path.split("."):
        rel = rels.get((model, part))
        if rel is None:
            return None
        kinds.append(rel.kind)
        model = rel.target
    return kinds


def _top_level_names(file: SourceFile) -> set[str]:
    names: set[str] = set()
    for node in file.tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
    return names
