"""VALID and INVALID examples of missing-input-validation (kept beside the rule, which imports them)."""

from __future__ import annotations

from tuber.phases.rules.base import Example, example

VALID: list[Example] = [
    example("""
        from fastapi import APIRouter
        from pydantic import BaseModel, Field

        class RestockLine(BaseModel):
            sku: str = Field(max_length=32)
            quantity: int = Field(gt=0, le=100_000)

        router = APIRouter()

        @router.post("/restock")
        def restock(payload: RestockLine):
            return payload
        """, note="bounded"),
    example("""
        from pydantic import BaseModel, Field

        class Line(BaseModel):
            quantity: int = Field(gt=0, le=100)

        class LineOut(BaseModel):
            quantity: int
        """, note="response model, not request input"),
    example("""
        from fastapi import APIRouter
        from pydantic import BaseModel, Field, model_validator

        class ReadingIn(BaseModel):
            value: float
            quality: int = Field(default=100, ge=0, le=100)

        class RuleIn(BaseModel):
            above: float | None = None
            below: float | None = None

            @model_validator(mode="after")
            def needs_a_bound(self):
                if self.above is None and self.below is None:
                    raise ValueError("set above, below or both")
                return self

        router = APIRouter()

        @router.post("/readings")
        def ingest(reading: ReadingIn):
            return reading

        @router.put("/rules")
        def set_rule(rule: RuleIn):
            return rule
        """, note="a measured value has no range to enforce; the thresholds are read by the model's validator"),
    example("""
        from flask import Flask, abort, request
        from .models import Ticket, db

        app = Flask(__name__)

        def ticket_changes():
            data = request.get_json(silent=True) or {}
            if len(str(data.get("subject", ""))) > 200 or data.get("priority") not in (None, 1, 2, 3, 4):
                abort(400)
            return data

        @app.patch("/tickets/<int:ticket_id>")
        def update_ticket(ticket_id):
            ticket = db.get_or_404(Ticket, ticket_id)
            data = ticket_changes()
            for field in ("subject", "priority"):
                if field in data:
                    setattr(ticket, field, data[field])
            db.session.commit()
            return {"id": ticket.id}
        """, note="the project's reader checks length and range: it validates"),
]

INVALID: list[Example] = [
    example("""
        from fastapi import APIRouter
        from pydantic import BaseModel, Field

        class RestockLine(BaseModel):
            quantity: int = Field(gt=0, le=100_000)

        class OrderLineIn(BaseModel):
            product_id: int
            quantity: int

        class OrderCreate(BaseModel):
            items: list[OrderLineIn] = Field(min_length=1)

        router = APIRouter()

        @router.post("/orders")
        def place_order(payload: OrderCreate):
            return payload

        @router.post("/restock")
        def restock(payload: RestockLine):
            return payload
        """, """
        from fastapi import APIRouter
        from pydantic import BaseModel, Field

        class RestockLine(BaseModel):
            quantity: int = Field(gt=0, le=100_000)

        class OrderLineIn(BaseModel):
            product_id: int
            quantity: int = Field(gt=0, le=100_000)

        class OrderCreate(BaseModel):
            items: list[OrderLineIn] = Field(min_length=1)

        router = APIRouter()

        @router.post("/orders")
        def place_order(payload: OrderCreate):
            return payload

        @router.post("/restock")
        def restock(payload: RestockLine):
            return payload
        """, note="nested request model; bounds copied from the sibling"),
    example("""
        from fastapi import APIRouter
        from pydantic import BaseModel

        class CartLine(BaseModel):
            qty: int = 1

        router = APIRouter()

        @router.post("/cart")
        def add(line: CartLine):
            return line
        """, """
        from fastapi import APIRouter
        from pydantic import BaseModel
        from pydantic import Field

        class CartLine(BaseModel):
            qty: int = Field(default=1, gt=0)

        router = APIRouter()

        @router.post("/cart")
        def add(line: CartLine):
            return line
        """, note="quantity with no sibling: conservative gt=0"),
    example("""
        from flask import Flask, abort, request
        from .models import Ticket, db

        app = Flask(__name__)

        def json_body():
            data = request.get_json(silent=True)
            if not isinstance(data, dict):
                abort(400)
            return data

        @app.patch("/tickets/<int:ticket_id>")
        def update_ticket(ticket_id):
            ticket = db.get_or_404(Ticket, ticket_id)
            data = json_body()
            for field in ("subject", "status", "priority"):
                if field in data:
                    setattr(ticket, field, data[field])
            db.session.commit()
            return {"id": ticket.id}
        """, note="the project's body reader checks only the type; setattr copies the values unchecked"),
]
