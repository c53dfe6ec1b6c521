"""FastAPI dependencies as the endpoint map records them: `Depends(...)` in parameter defaults, `Annotated[...]`
hints and module-level aliases of them, and router/decorator `dependencies=[...]` lists."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tuber.phases.datamap.calls import imports
from tuber.phases.datamap.schema_common import keyword
from tuber.phases.rules.base import SourceFile, dotted_name

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

Def = ast.FunctionDef | ast.AsyncFunctionDef


def parameter_depends(node: Def, aliases: dict[str, str]) -> Iterator[str]:
    """Names passed to Depends()/Security() in parameter defaults or Annotated[...] hints, including hints that
    name a module-level alias (`CurrentUser = Annotated[User, Depends(get_current_user)]`)."""
    args = node.args
    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
        if arg.annotation is not None:
            for sub in ast.walk(arg.annotation):
                if isinstance(sub, ast.Call) and _is_depends(sub):
                    yield _depends_target(sub, arg.annotation)
                elif isinstance(sub, ast.Name | ast.Attribute) and dotted_name(sub) in aliases:
                    yield aliases[dotted_name(sub)]
    for default in [*args.defaults, *args.kw_defaults]:
        if isinstance(default, ast.Call) and _is_depends(default):
            yield _depends_target(default, None)


def depends_aliases(repo: RepoMap, files: list[SourceFile]) -> dict[str, dict[str, str]]:
    """Per file: local name -> dependency target, for names bound to `Annotated[..., Depends(target)]` in that
    file or imported from the file that defines them."""
    defined: dict[tuple[str, str], str] = {}
    for file in files:
        if "Annotated" not in file.text:
            continue
        for statement in file.tree.body:
            target = statement.targets[0] if isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
                else statement.target if isinstance(statement, ast.AnnAssign) else None
            value = statement.value if isinstance(statement, ast.Assign | ast.AnnAssign) else None
            if isinstance(target, ast.Name) and isinstance(value, ast.Subscript) \
                    and dotted_name(value.value).rsplit(".", 1)[-1] == "Annotated":
                depends = [c for c in ast.walk(value) if isinstance(c, ast.Call) and _is_depends(c)]
                if depends:
                    defined[(file.path, target.id)] = _depends_target(depends[0], None)
    if not defined:
        return {}
    names = {name for _, name in defined}
    aliases: dict[str, dict[str, str]] = {}
    for file in files:
        local = {name: dep for (path, name), dep in defined.items() if path == file.path}
        if any(name in file.text for name in names):
            for name, (path, attr) in imports(repo, file).items():
                if (path, attr) in defined:
                    local[name] = defined[(path, attr)]
        if local:
            aliases[file.path] = local
    return aliases


def _is_depends(call: ast.Call) -> bool:
    return dotted_name(call.func).rsplit(".", 1)[-1] in ("Depends", "Security")


def _depends_target(call: ast.Call, annotation: ast.expr | None) -> str:
    if call.args:
        return dotted_name(call.args[0]) or ast.unparse(call.args[0])
    dependency = keyword(call, "dependency")
    if dependency is not None:
        return dotted_name(dependency)
    return dotted_name(annotation) if annotation is not None else ""


def depends_list(node: ast.expr | None) -> list[str]:
    if not isinstance(node, ast.List | ast.Tuple):
        return []
    return [_depends_target(e, None) for e in node.elts if isinstance(e, ast.Call) and _is_depends(e)]
