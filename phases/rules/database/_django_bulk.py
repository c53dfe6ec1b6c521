"""Can a Django model's per-row `create()` / `save()` become `bulk_create` / `bulk_update` (for loop_writes)?

`bulk_create` and `bulk_update` never call the model's `save()` and send no `pre_save` / `post_save`
signals; `bulk_create` refuses multi-table inherited models, and `bulk_update` writes only the fields it
is given, without the fields' `pre_save()` (so `auto_now` fields, which `save()` refreshes, stay as they
were). A model qualifies only when everything about it is visible in the repository and none of that applies:

- every base class is `models.Model`, or a class of the repository that is an abstract model or a plain
  mixin (a third-party base such as `MPTTModel` may override `save()`, so it refuses), none of them a
  concrete model (multi-table inheritance) and none defining `save()`;
- `objects` is Django's own manager, or a manager / queryset class of the repository that overrides none
  of the methods the bulk call goes through;
- no class attribute is a call we cannot place (a `HistoricalRecords()` hooks `post_save`);
- no `pre_save` / `post_save` receiver in the repository could be for it (one without a sender, or with
  a sender we cannot name, counts for every model), and no `register(Model)` call outside the admin.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from tuber.phases.datamap.repo import RepoMap
from tuber.phases.rules.base import SourceFile, dotted_name

DJANGO_MODEL_BASES = {"models.Model", "Model", "django.db.models.Model"}
DJANGO_MANAGER_BASES = {"models.Manager", "Manager", "models.QuerySet", "QuerySet", "models.BaseManager",
                        "BaseManager", "django.db.models.Manager", "django.db.models.QuerySet"}
RELATIONS = {"ForeignKey", "OneToOneField", "ParentalKey"}
NOT_CONCRETE = {"ManyToManyField", "GenericForeignKey", "GenericRelation", "ParentalManyToManyField"}
# Django's own fields whose pre_save() returns the attribute as it is (unless auto_now)
PLAIN_FIELDS = {
    "AutoField", "BigAutoField", "SmallAutoField", "BigIntegerField", "BinaryField", "BooleanField", "CharField",
    "DateField", "DateTimeField", "DecimalField", "DurationField", "EmailField", "FloatField",
    "GenericIPAddressField", "IntegerField", "JSONField", "PositiveBigIntegerField", "PositiveIntegerField",
    "PositiveSmallIntegerField", "SlugField", "SmallIntegerField", "TextField", "TimeField", "URLField", "UUIDField",
    "ForeignKey", "OneToOneField", "NullBooleanField", "IPAddressField", "ArrayField",
}
SAVE_METHODS = {"save", "save_base", "_do_insert", "_do_update", "_save_table"}
# manager / queryset methods the bulk calls go through; a repository override could change what they do
MANAGER_OVERRIDES = {"create", "bulk_create", "bulk_update", "update", "get_queryset", "_insert",
                     "_batched_insert", "filter"}
SIGNALS = {"pre_save", "post_save"}
ANY = "*"  # a receiver whose sender we cannot name: it may be for any model


@dataclass
class ModelFacts:
    """What the bulk rewrite needs to know about one model class (merged over its repository bases)."""

    refusal: str = ""  # why the model cannot be written in bulk, "" when it can
    fields: set[str] = field(default_factory=set)  # concrete field attributes (and `<fk>_id` names)
    primary_keys: set[str] = field(default_factory=lambda: {"id", "pk"})
    # fields whose pre_save() may change the value save() writes (auto_now, a file to commit to storage, a
    # field class we cannot see): bulk_update calls no pre_save()
    refreshed_on_save: set[str] = field(default_factory=set)


def model_facts(repo: RepoMap, name: str) -> ModelFacts:
    """Facts about the Django model called `name` (refused when it is not a concrete model we can see)."""
    return repo.derived(f"loop_writes.django_model:{name}", lambda: _model_facts(repo, name))


def _model_facts(repo: RepoMap, name: str) -> ModelFacts:
    known = repo.schema.models.get(name)
    if known is None or known.framework != "django":
        return ModelFacts(refusal=f"{name} is not a Django model of this repository")
    candidates = classes_named(repo, name)
    if len(candidates) != 1:
        return ModelFacts(refusal=f"{name} is declared {len(candidates)} times")
    facts = ModelFacts()
    _collect(repo, candidates[0][1], facts, seen=set(), top=True)
    if not facts.refusal and _has_save_hooks(repo, name):
        facts.refusal = f"the repository hooks save signals (or a registry) that may apply to {name}"
    return facts


def classes_named(repo: RepoMap, name: str) -> list[tuple[SourceFile, ast.ClassDef]]:
    """Top-level classes called `name` outside migrations."""
    pattern = re.compile(rf"\bclass\s+{re.escape(name)}\b")
    found: list[tuple[SourceFile, ast.ClassDef]] = []
    for file in repo.python_files():
        if "/migrations/" in f"/{file.path}" or not pattern.search(file.text):
            continue
        try:
            tree = file.tree
        except SyntaxError:
            continue
        found.extend((file, n) for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)
    return found


def _collect(repo: RepoMap, cls: ast.ClassDef, facts: ModelFacts, seen: set[str], top: bool) -> None:
    """Merge one class of the model's hierarchy into `facts`, then its bases."""
    if cls.name in seen:
        return
    seen.add(cls.name)
    methods = {n.name for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    if methods & SAVE_METHODS:
        facts.refusal = f"{cls.name} overrides save()"
        return
    if not top and _is_concrete_model(repo, cls):
        facts.refusal = f"multi-table inheritance from {cls.name}"
        return
    for node in cls.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        attribute, value = node.targets[0].id, node.value
        if attribute == "objects":
            problem = _manager_problem(repo, value)
            if problem:
                facts.refusal = problem
                return
        elif isinstance(value, ast.Call):
            problem = _attribute_call(attribute, value, facts)
            if problem:
                facts.refusal = problem
                return
    for base in cls.bases:
        name = dotted_name(base)
        if name in DJANGO_MODEL_BASES:
            continue
        found = classes_named(repo, name.rsplit(".", 1)[-1]) if name else []
        if len(found) != 1:
            facts.refusal = f"base class {name or '?'} of {cls.name} is not in the repository"
            return
        _collect(repo, found[0][1], facts, seen, top=False)
        if facts.refusal:
            return


def _is_concrete_model(repo: RepoMap, cls: ast.ClassDef) -> bool:
    model = repo.schema.models.get(cls.name)
    return model is not None and model.framework == "django"


def _attribute_call(attribute: str, value: ast.Call, facts: ModelFacts) -> str:
    """Record a field; '' for calls that are fields or managers, a refusal for anything else."""
    kind = dotted_name(value.func).rsplit(".", 1)[-1]
    if kind in NOT_CONCRETE or kind.endswith("Manager") or dotted_name(value.func).endswith(".as_manager"):
        return ""
    if kind.endswith("Field") or kind in RELATIONS:
        facts.fields.add(attribute)
        if kind in RELATIONS:
            facts.fields.add(f"{attribute}_id")
        if _keyword_true(value, "primary_key"):
            facts.primary_keys.add(attribute)
        if _keyword_true(value, "auto_now") or kind not in PLAIN_FIELDS:
            facts.refreshed_on_save.add(attribute)
        return ""
    if kind in {"gettext_lazy", "_", "gettext", "frozenset", "set", "dict", "list", "tuple", "compile"}:
        return ""
    return f"class attribute {attribute} = {kind}(...) may hook saving"


def _keyword_true(call: ast.Call, name: str) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is True for k in call.keywords)


def _manager_problem(repo: RepoMap, value: ast.expr) -> str:
    """'' when `objects = value` behaves like Django's manager for create/bulk_create/bulk_update."""
    if not isinstance(value, ast.Call):
        return "objects is not a manager instance"
    func = dotted_name(value.func)
    if func in DJANGO_MANAGER_BASES:
        return ""
    if func.endswith(".as_manager") and not value.args:
        return _manager_class_problem(repo, func.rsplit(".", 1)[0], set())
    if isinstance(value.func, ast.Call) and dotted_name(value.func.func).endswith(".from_queryset"):
        inner = value.func
        owner = dotted_name(inner.func).rsplit(".", 1)[0]
        queryset = dotted_name(inner.args[0]) if inner.args else ""
        return _manager_class_problem(repo, owner, set()) or _manager_class_problem(repo, queryset, set())
    return _manager_class_problem(repo, func, set())


def _manager_class_problem(repo: RepoMap, name: str, seen: set[str]) -> str:
    if name in DJANGO_MANAGER_BASES:
        return ""
    short = name.rsplit(".", 1)[-1]
    found = classes_named(repo, short) if short else []
    if len(found) != 1:
        return f"manager {name or '?'} is not in the repository"
    if short in seen:
        return ""
    seen.add(short)
    cls = found[0][1]
    overridden = {n.name for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)} & MANAGER_OVERRIDES
    if overridden:
        return f"manager {short} overrides {', '.join(sorted(overridden))}"
    for base in cls.bases:
        problem = _manager_class_problem(repo, dotted_name(base), seen)
        if problem:
            return problem
    return ""


def _has_save_hooks(repo: RepoMap, model: str) -> bool:
    receivers = repo.derived("loop_writes.save_receivers", lambda: _save_receivers(repo))
    return ANY in receivers or model.lower() in receivers


def _save_receivers(repo: RepoMap) -> set[str]:
    """Senders of every pre_save/post_save receiver and every `register(X)` call (ANY when unknown)."""
    senders: set[str] = set()
    for file in repo.python_files():
        has_signals = "pre_save" in file.text or "post_save" in file.text
        if not has_signals and "register(" not in file.text:
            continue
        try:
            tree = file.tree
        except SyntaxError:
            continue
        used: set[int] = set()  # signal references explained by a receiver() or .connect()
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                _receiver_call(node, senders, used)
        if has_signals:
            for node in ast.walk(tree):
                if _signal_name(node) and id(node) not in used:
                    senders.add(ANY)  # sent, disconnected or aliased: not a shape we can follow
    return senders


def _receiver_call(call: ast.Call, senders: set[str], used: set[int]) -> None:
    func = dotted_name(call.func)
    last = func.rsplit(".", 1)[-1]
    if last == "receiver" and call.args:
        signals = call.args[0].elts if isinstance(call.args[0], ast.List | ast.Tuple) else [call.args[0]]
        if any(_signal_name(s) for s in signals):
            used.update(id(s) for s in signals)
            senders.add(_sender(next((k.value for k in call.keywords if k.arg == "sender"), None)))
    elif last == "connect" and isinstance(call.func, ast.Attribute) and _signal_name(call.func.value):
        used.add(id(call.func.value))
        sender = next((k.value for k in call.keywords if k.arg == "sender"), None)
        senders.add(_sender(sender if sender is not None or len(call.args) < 2 else call.args[1]))
    elif last == "register" and not func.startswith(("admin", "site")):
        # auditlog.register(Model), reversion.register(Model): a registry that may hook saving; other
        # register() calls (atexit.register(fn)) name no model and are ignored
        senders.update(s for s in map(_sender, call.args) if s != ANY)


def _signal_name(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id in SIGNALS) or (isinstance(node, ast.Attribute)
                                                                 and node.attr in SIGNALS)


def _sender(node: ast.expr | None) -> str:
    """The model a receiver listens to, by lower-case class name; ANY when there is none or it cannot be named."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.rsplit(".", 1)[-1].lower()  # "app.Model": Django matches model names in any case
    name = dotted_name(node).rsplit(".", 1)[-1] if node is not None and not isinstance(node, ast.Call) else ""
    if name[:1].isupper() and not name.isupper():
        return name.lower()
    return ANY
