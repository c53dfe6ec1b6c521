"""missing-input-validation: request models only, sibling bounds copied, and pydantic enforces them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError
from tuber.phases.datamap.repo import load_repo
from tuber.phases.rules.api import missing_input_validation as rule

SCHEMAS = '''
from fastapi import APIRouter
from pydantic import BaseModel, Field


class RestockLine(BaseModel):
    sku: str = Field(max_length=32)
    quantity: int = Field(gt=0, le=100_000)


class OrderLineIn(BaseModel):
    product_id: int
    sku: str
    quantity: int


class OrderCreate(BaseModel):
    lines: list[OrderLineIn]


class OrderLineOut(BaseModel):
    quantity: int


router = APIRouter()


@router.post("/orders", response_model=OrderLineOut)
def place(payload: OrderCreate):
    return payload.lines[0]


@router.post("/restock")
def restock(payload: RestockLine):
    return payload
'''


def test_unbounded_request_fields_are_reported_and_bounded(tmp_path: Path) -> None:
    (tmp_path / "schemas.py").write_text(textwrap.dedent(SCHEMAS).lstrip())
    repo = load_repo(tmp_path)
    file = repo.file("schemas.py")
    assert file is not None
    hits = list(rule.detect(file, repo))
    assert sorted(h.key for h in hits) == ["field:OrderLineIn.quantity", "field:OrderLineIn.sku"]  # not OrderLineOut
    quantity = next(h for h in hits if h.key.endswith("quantity"))
    fix = rule.fix(quantity, file, repo)
    assert fix is not None
    text = fix.files["schemas.py"]
    assert "    quantity: int = Field(gt=0, le=100_000)\n" in text
    namespace: dict[str, object] = {}
    exec(compile(text, "schemas.py", "exec"), namespace)  # noqa: S102 - the fixed module, run as the app would
    line = namespace["OrderLineIn"]
    with pytest.raises(ValidationError):
        line(product_id=1, sku="A", quantity=0)  # type: ignore[operator]
    assert line(product_id=1, sku="A", quantity=3).quantity == 3  # type: ignore[operator]
