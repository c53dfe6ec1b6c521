"""VALID and INVALID examples of the sql-injection rule (run by tests/phases/rules/test_examples.py)."""

from __future__ import annotations

from tuber.phases.rules.base import Example, example

VALID: list[Example] = [
    example("""
        from datetime import datetime, timezone
        from pathlib import Path


        def utcnow():
            return datetime.now(timezone.utc).isoformat()


        def apply(conn, path: Path, version: int):
            conn.executescript("BEGIN;\\n" + path.read_text() + f"\\nINSERT INTO log (at) VALUES ('{utcnow()}');\\nCOMMIT;")


        def listing(conn, cuisine_id=None):
            where, params = "", []
            if cuisine_id is not None:
                where, params = "WHERE cuisine_id = ?", [cuisine_id]
            return conn.execute(f"SELECT id FROM recipes {where}", params).fetchall()
        """, note="a migration file's own SQL, a no-argument helper's timestamp, a constant WHERE picked by unpacking"),
    example("""
        from .sqlrepo import fetch_rows

        SPECIES_COUNTS = "SELECT species, count(*) FROM pets GROUP BY species"

        def species(db, since):
            return fetch_rows(db, SPECIES_COUNTS + " HAVING max(created_at) >= :since", {"since": since})
        """, path="app/reports.py", extra={"app/sqlrepo.py": """
        from sqlalchemy import text

        def fetch_rows(db, statement, params=None):
            return [dict(r._mapping) for r in db.execute(text(statement), params or {})]
        """}, note="a repository wrapper that runs its parameter, called with constant SQL and bound values"),
    example("""
        from django.db import connection

        from .models import Item

        SORTABLE = {field.name for field in Item._meta.get_fields()}

        def items_sorted(sort):
            if sort not in SORTABLE:
                raise ValueError(sort)
            with connection.cursor() as cursor:
                cursor.execute("SELECT sku FROM inventory_item ORDER BY %s" % sort)
                return cursor.fetchall()
        """, note="Django: identifier checked against the model's own field names"),
    example("""
        import sqlite3

        def find(conn, ids):
            placeholders = ",".join("?" * len(ids))
            return conn.execute(f"SELECT * FROM users WHERE id IN ({placeholders})", ids).fetchall()
        """, note="sqlite3: the f-string only inserts a placeholder list"),
    example("""
        import sqlite3

        ORDER = {"name": "username", "newest": "created_at DESC"}

        def listing(conn, sort):
            column = ORDER.get(sort, "id")
            return conn.execute(f"SELECT * FROM users ORDER BY {column}").fetchall()
        """, note="sqlite3: identifier picked from a constant whitelist"),
    example("""
        import sqlite3

        ALLOWED = {"title", "created_at"}

        def listing(conn, sort, status):
            if sort not in ALLOWED:
                raise ValueError(sort)
            sql = "SELECT * FROM notes WHERE 1 = 1"
            params = []
            if status:
                sql += " AND status = ?"
                params.append(status)
            sql += f" ORDER BY {sort} LIMIT %d" % 20
            return conn.execute(sql, params).fetchall()
        """, note="sqlite3: membership guard, constant fragments, numeric %d"),
    example("""
        import sqlite3

        def run(conn, name):
            return conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchall()
        """, note="sqlite3: bound parameter"),
    example("""
        import psycopg2

        def by_ids(conn, ids, status):
            marks = ", ".join(["%s"] * len(ids))
            with conn.cursor() as cur:
                cur.execute(f"SELECT * FROM orders WHERE id IN ({marks}) AND status = %s", [*ids, status])
                return cur.fetchall()
        """, note="psycopg2: placeholder list built with join"),
    example("""
        from flask import request
        from sqlalchemy import text

        from .extensions import db

        COLUMNS = "p.slug, p.title"

        def search_tags():
            names = request.args.get("names", "").split(",")
            params = {f"tag_{i}": name for i, name in enumerate(names)}
            placeholders = ", ".join(f":{key}" for key in params)
            sql = f"SELECT {COLUMNS} FROM posts p JOIN tags t ON t.post_id = p.id WHERE t.name IN ({placeholders})"
            return db.session.execute(text(sql), params).all()
        """, note="SQLAlchemy text(): constant fragments and generated :tag_N bind names"),
    example("""
        from .models import Member

        SUMMARY_SQL = "SELECT m.id, m.card_number FROM lending_member m"

        def member_summary(card_number):
            return Member.objects.raw(f"{SUMMARY_SQL} WHERE m.card_number = %s", params=[card_number])
        """, note="Django raw(): constant prefix, value bound"),
    example("""
        from django.db import connection

        SORTS = {"name": "last_name", "joined": "created_at"}

        def members(sort):
            with connection.cursor() as cursor:
                cursor.execute("SELECT id FROM lending_member ORDER BY %s" % SORTS[sort])
                return cursor.fetchall()
        """, note="Django cursor: identifier looked up in a constant mapping"),
]

INVALID: list[Example] = [
    example("""
        from .sqlrepo import fetch_rows

        def search(db, q):
            statement = f"SELECT id, name FROM pets WHERE name LIKE '{q}%' ORDER BY name"
            return fetch_rows(db, statement)
        """, path="app/pets.py", extra={"app/sqlrepo.py": """
        from sqlalchemy import text

        def fetch_rows(db, statement, params=None):
            return [dict(r._mapping) for r in db.execute(text(statement), params or {})]
        """}, note="formatted SQL handed to a wrapper in another module that runs it through text()"),
    example("""
        from sqlalchemy import text

        VISITS = "SELECT count(*) FROM visits v JOIN pets p ON p.id = v.pet_id WHERE p.species = '{species}'"

        def visits(db, species):
            criteria = {"species": species}
            return db.execute(text(VISITS.format(**criteria))).scalar()
        """, note="str.format(**mapping): the mapping's values are formatted in"),
    example("""
        from .models import Item

        def items(request):
            conditions = []
            category = request.GET.get("category")
            if category:
                conditions.append("category = '%s'" % category)
            return Item.objects.extra(where=conditions)
        """, note="Django extra(where=list) with a clause appended before the call"),
    example(
        """
        import sqlite3

        def find_by_username(conn, username):
            cur = conn.cursor()
            cur.execute(
                "SELECT id, username FROM users WHERE username = '%s'" % username
            )
            return cur.fetchone()
        """,
        """
        import sqlite3

        def find_by_username(conn, username):
            cur = conn.cursor()
            cur.execute(
                "SELECT id, username FROM users WHERE username = ?",
                (username,)
            )
            return cur.fetchone()
        """, note="sqlite3: %-formatting inside quotes"),
    example(
        """
        import sqlite3

        def notes_with_tag(conn, user_id, name, limit=50):
            sql = (
                "SELECT n.id FROM tags t JOIN notes n ON n.tag_id = t.id "
                "WHERE t.user_id = ? AND t.name = '{}' "
                "ORDER BY n.id LIMIT ?"
            ).format(name.strip().lower())
            return conn.execute(sql, (user_id, limit)).fetchall()
        """,
        """
        import sqlite3

        def notes_with_tag(conn, user_id, name, limit=50):
            sql = (
                "SELECT n.id FROM tags t JOIN notes n ON n.tag_id = t.id "
                "WHERE t.user_id = ? AND t.name = ? "
                "ORDER BY n.id LIMIT ?"
            )
            return conn.execute(sql, (user_id, name.strip().lower(), limit)).fetchall()
        """, note="sqlite3: .format() in a variable, merged into existing parameters in order"),
    example(
        """
        import sqlite3

        def search(conn, term):
            return conn.execute(f"SELECT id FROM notes WHERE title LIKE '%{term}%' ORDER BY id").fetchall()
        """,
        """
        import sqlite3

        def search(conn, term):
            return conn.execute("SELECT id FROM notes WHERE title LIKE ? ORDER BY id", (f"%{term}%",)).fetchall()
        """, note="sqlite3: LIKE pattern: the whole literal becomes the parameter"),
    example(
        """
        import sqlite3

        def delete(conn, note_id):
            conn.execute("DELETE FROM notes WHERE id = " + note_id)
        """,
        """
        import sqlite3

        def delete(conn, note_id):
            conn.execute("DELETE FROM notes WHERE id = ?", (note_id,))
        """, note="sqlite3: concatenation"),
    example("""
        import sqlite3

        def listing(conn, sort):
            return conn.execute(f"SELECT * FROM notes ORDER BY {sort}").fetchall()
        """, note="sqlite3: identifier from the caller, table unknown to the schema: reported, not fixable"),
    example(
        """
        import sqlite3

        SCHEMA = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, created_at TEXT)"


        def listing(conn, sort="name", direction="asc"):
            return conn.execute(f"SELECT id, name FROM users ORDER BY {sort} {direction}").fetchall()
        """,
        """
        import sqlite3

        SCHEMA = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, created_at TEXT)"


        _USERS_SORT_COLUMNS = {"id": "id", "name": "name", "created_at": "created_at"}
        _SORT_DIRECTIONS = {"asc": "ASC", "desc": "DESC", "ASC": "ASC", "DESC": "DESC"}


        def listing(conn, sort="name", direction="asc"):
            sort_column = _USERS_SORT_COLUMNS.get(sort, "name")
            safe_direction = _SORT_DIRECTIONS.get(direction, "ASC")
            return conn.execute(f"SELECT id, name FROM users ORDER BY {sort_column} {safe_direction}").fetchall()
        """, note="sqlite3: ORDER BY column and direction looked up in whitelists (schema columns, ASC/DESC), "
                  "the code's own defaults kept"),
    example(
        """
        from sqlalchemy import Column, Integer, String, text
        from sqlalchemy.orm import declarative_base

        Base = declarative_base()


        class Post(Base):
            __tablename__ = "posts"
            id = Column(Integer, primary_key=True)
            title = Column(String(200))
            author = Column(String(80))


        def posts_by(session, author, sort):
            sql = f"SELECT id, title FROM posts WHERE author = '{author}' ORDER BY {sort} DESC"
            return session.execute(text(sql)).all()
        """,
        """
        from sqlalchemy import Column, Integer, String, text
        from sqlalchemy.orm import declarative_base

        Base = declarative_base()


        class Post(Base):
            __tablename__ = "posts"
            id = Column(Integer, primary_key=True)
            title = Column(String(200))
            author = Column(String(80))


        _POSTS_SORT_COLUMNS = {"id": "id", "title": "title", "author": "author"}


        def posts_by(session, author, sort):
            sort_column = _POSTS_SORT_COLUMNS.get(sort, "id")
            sql = f"SELECT id, title FROM posts WHERE author = :author ORDER BY {sort_column} DESC"
            return session.execute(text(sql), {"author": author}).all()
        """, note="SQLAlchemy text(): the ORDER BY column from the model's columns, the value bound as :author"),
    example(
        """
        import psycopg

        SCHEMA = "CREATE TABLE customers (id serial PRIMARY KEY, email text, name text)"


        def column_value(conn, column, customer_id):
            with conn.cursor() as cur:
                cur.execute("SELECT %s FROM customers WHERE id = %%s" % column, (customer_id,))
                return cur.fetchone()
        """,
        """
        import psycopg

        SCHEMA = "CREATE TABLE customers (id serial PRIMARY KEY, email text, name text)"


        _CUSTOMERS_COLUMNS = {"id": "id", "email": "email", "name": "name"}


        def column_value(conn, column, customer_id):
            with conn.cursor() as cur:
                safe_column = _CUSTOMERS_COLUMNS.get(column, "id")
                cur.execute("SELECT %s FROM customers WHERE id = %%s" % safe_column, (customer_id,))
                return cur.fetchone()
        """, database="postgresql", note="psycopg: a %s-formatted column name looked up in the table's columns"),
    example(
        """
        import psycopg

        def find(conn, email):
            with conn.cursor() as cur:
                cur.execute(f"SELECT id FROM customers WHERE email = '{email}' AND name LIKE 'A%'")
                return cur.fetchone()
        """,
        """
        import psycopg

        def find(conn, email):
            with conn.cursor() as cur:
                cur.execute("SELECT id FROM customers WHERE email = %s AND name LIKE 'A%%'", (email,))
                return cur.fetchone()
        """, database="postgresql", note="psycopg: %s placeholder, literal % escaped"),
    example(
        """
        from flask import request
        from sqlalchemy import text

        from .extensions import db

        def search():
            term = request.args.get("q", "")
            sql = f"SELECT slug FROM posts WHERE title = '{term}' LIMIT :limit"
            return db.session.execute(text(sql), {"limit": 20}).all()
        """,
        """
        from flask import request
        from sqlalchemy import text

        from .extensions import db

        def search():
            term = request.args.get("q", "")
            sql = "SELECT slug FROM posts WHERE title = :term LIMIT :limit"
            return db.session.execute(text(sql), {"limit": 20, "term": term}).all()
        """, note="Flask-SQLAlchemy text(): named parameter added to the execute() mapping"),
    example(
        """
        import sqlalchemy as sa

        def find(engine, name):
            stmt = sa.text("SELECT id FROM users WHERE name = '" + name + "'")
            with engine.connect() as conn:
                return conn.execute(stmt).all()
        """,
        """
        import sqlalchemy as sa

        def find(engine, name):
            stmt = sa.text("SELECT id FROM users WHERE name = :name").bindparams(name=name)
            with engine.connect() as conn:
                return conn.execute(stmt).all()
        """, note="SQLAlchemy Core: text() outside execute(): .bindparams()"),
    example(
        """
        from fastapi import APIRouter
        from sqlalchemy import text

        router = APIRouter()

        @router.get("/products")
        def products(category: str, db=None):
            return db.execute(text(f"SELECT id FROM products WHERE category = '{category}'")).all()
        """,
        """
        from fastapi import APIRouter
        from sqlalchemy import text

        router = APIRouter()

        @router.get("/products")
        def products(category: str, db=None):
            return db.execute(text("SELECT id FROM products WHERE category = :category"), {"category": category}).all()
        """, note="FastAPI: a query parameter in text()"),
    example(
        """
        from .models import Member

        def find_members(last_name):
            return list(Member.objects.raw(f"SELECT * FROM lending_member WHERE last_name = '{last_name}'"))
        """,
        """
        from .models import Member

        def find_members(last_name):
            return list(Member.objects.raw("SELECT * FROM lending_member WHERE last_name = %s", params=[last_name]))
        """, note="Django raw(): params=[...]"),
    example(
        """
        from django.db import connection

        def find(name):
            with connection.cursor() as cursor:
                cursor.execute("SELECT id FROM lending_member WHERE last_name = '%s'" % name)
                return cursor.fetchall()
        """,
        """
        from django.db import connection

        def find(name):
            with connection.cursor() as cursor:
                cursor.execute("SELECT id FROM lending_member WHERE last_name = %s", (name,))
                return cursor.fetchall()
        """, note="Django connection.cursor(): %s"),
    example(
        """
        from .models import Member

        def by_name(name):
            return Member.objects.extra(where=[f"last_name = '{name}'"])
        """,
        """
        from .models import Member

        def by_name(name):
            return Member.objects.extra(where=["last_name = %s"], params=[name])
        """, note="Django extra(): params=[...]"),
]
