"""weak-password-hash examples for hashing inside a class (kept apart to keep the rule module short)."""

from __future__ import annotations

import textwrap

from tuber.phases.rules.base import Example, example
from tuber.phases.rules.security._password_helpers import PBKDF2_HELPERS
from tuber.phases.rules.security._password_methods import MATCHES

# the fixed model modules of the widening examples start alike: imports, then the module-level helpers
_WIDENED_HEAD = "import hashlib\nimport hmac\nimport secrets\n\n{imports}\n" + (
    PBKDF2_HELPERS + MATCHES).replace("{", "{{").replace("}", "}}") + "\n"


def _dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")

_DJANGO_SHORT = '''
    import hashlib

    from django.db import models


    class Operator(models.Model):
        pin_hash = models.CharField(max_length=64)

        def set_pin(self, pin):
            self.pin_hash = hashlib.md5(pin.encode()).hexdigest()

        def check_pin(self, pin):
            return self.pin_hash == hashlib.md5(pin.encode()).hexdigest()
    '''

METHOD_EXAMPLES: list[Example] = [
    example('''
        import hashlib

        from flask_sqlalchemy import SQLAlchemy

        db = SQLAlchemy()


        class User(db.Model):
            id = db.Column(db.Integer, primary_key=True)
            password_hash = db.Column(db.String(128))

            def set_password(self, password):
                self.password_hash = hashlib.sha256(password.encode()).hexdigest()

            def check_password(self, password):
                return self.password_hash == hashlib.sha256(password.encode()).hexdigest()
        ''', '''
        import hashlib
        import hmac
        import secrets

        from flask_sqlalchemy import SQLAlchemy

        db = SQLAlchemy()


        def _pbkdf2_password_hash(password: str, salt: str = "", iterations: int = 600_000) -> str:
            """A salted PBKDF2-SHA256 hash, stored as pbkdf2_sha256$<iterations>$<salt>$<hex digest>."""
            salt = salt or secrets.token_hex(16)
            digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode("utf-8"), iterations).hex()
            return f"pbkdf2_sha256${iterations}${salt}${digest}"


        def password_needs_rehash(stored: str) -> bool:
            """True for hashes in the legacy format, which the next successful login upgrades."""
            return not str(stored or "").startswith("pbkdf2_sha256$")


        def password_hash_matches(password: str, stored: str, legacy_digest: str) -> bool:
            """Check a password against a stored PBKDF2 hash, or against the digest the code stored before."""
            stored = str(stored or "")
            if not password_needs_rehash(stored):
                _, iterations, salt, _digest = stored.split("$", 3)
                return hmac.compare_digest(_pbkdf2_password_hash(password, salt, int(iterations)), stored)
            return hmac.compare_digest(legacy_digest, stored)


        class User(db.Model):
            id = db.Column(db.Integer, primary_key=True)
            password_hash = db.Column(db.String(128))

            def set_password(self, password):
                self.password_hash = _pbkdf2_password_hash(password)

            def check_password(self, password):
                if not password_hash_matches(password, self.password_hash, hashlib.sha256(password.encode()).hexdigest()):
                    return False
                if password_needs_rehash(self.password_hash):
                    self.password_hash = _pbkdf2_password_hash(password)
                return True
        ''', note="model setter/checker: new hashes salted, the old digest verifies legacy rows, which the "
                   "checker upgrades in place (login guards commit it)"),
    example('''
        import hashlib

        from django.db import models


        class Operator(models.Model):
            badge = models.CharField(max_length=12, unique=True)
            pin_hash = models.CharField(max_length=128)

            @staticmethod
            def hash_pin(badge, pin):
                return hashlib.md5(f"{badge}:{pin}".encode()).hexdigest()

            def set_pin(self, pin):
                self.pin_hash = self.hash_pin(self.badge, pin)

            def check_pin(self, pin):
                return self.pin_hash == self.hash_pin(self.badge, pin)
        ''', '''
        import hashlib
        import hmac
        import secrets

        from django.db import models


        def _pbkdf2_password_hash(password: str, salt: str = "", iterations: int = 600_000) -> str:
            """A salted PBKDF2-SHA256 hash, stored as pbkdf2_sha256$<iterations>$<salt>$<hex digest>."""
            salt = salt or secrets.token_hex(16)
            digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode("utf-8"), iterations).hex()
            return f"pbkdf2_sha256${iterations}${salt}${digest}"


        def password_needs_rehash(stored: str) -> bool:
            """True for hashes in the legacy format, which the next successful login upgrades."""
            return not str(stored or "").startswith("pbkdf2_sha256$")


        def password_hash_matches(password: str, stored: str, legacy_digest: str) -> bool:
            """Check a password against a stored PBKDF2 hash, or against the digest the code stored before."""
            stored = str(stored or "")
            if not password_needs_rehash(stored):
                _, iterations, salt, _digest = stored.split("$", 3)
                return hmac.compare_digest(_pbkdf2_password_hash(password, salt, int(iterations)), stored)
            return hmac.compare_digest(legacy_digest, stored)


        class Operator(models.Model):
            badge = models.CharField(max_length=12, unique=True)
            pin_hash = models.CharField(max_length=128)

            @staticmethod
            def hash_pin(badge, pin):
                return _pbkdf2_password_hash(pin)

            @staticmethod
            def _legacy_hash_pin(badge, pin):
                return hashlib.md5(f"{badge}:{pin}".encode()).hexdigest()

            def set_pin(self, pin):
                self.pin_hash = self.hash_pin(self.badge, pin)

            def check_pin(self, pin):
                if not password_hash_matches(pin, self.pin_hash, self._legacy_hash_pin(self.badge, pin)):
                    return False
                if password_needs_rehash(self.pin_hash):
                    self.pin_hash = _pbkdf2_password_hash(pin)
                    if self.pk:
                        self.save(update_fields=["pin_hash"])
                return True
        ''', note="a @staticmethod hash helper on a Django model: kept as _legacy_<name>, the checker saves "
                   "the upgraded hash"),
    example('''
        import hashlib

        from sqlalchemy import Column, Integer, String
        from sqlalchemy.orm import declarative_base

        Base = declarative_base()


        class Member(Base):
            __tablename__ = "members"
            id = Column(Integer, primary_key=True)
            password_hash = Column(String(64))

            def set_password(self, password):
                self.password_hash = hashlib.sha256(password.encode()).hexdigest()

            def check_password(self, password):
                return self.password_hash == hashlib.sha256(password.encode()).hexdigest()
        ''', extra={"migrations/0001_init.sql": "CREATE TABLE members (id SERIAL PRIMARY KEY, password_hash VARCHAR(64));"},
        database="postgresql", note="column too short for the 118-character PBKDF2 hash, its schema in plain SQL "
                                    "migrations on PostgreSQL (squawk reports any ALTER COLUMN TYPE): refused"),
    example('''
        import hashlib

        from flask_sqlalchemy import SQLAlchemy

        db = SQLAlchemy()


        class User(db.Model):
            __tablename__ = "users"

            id = db.Column(db.Integer, primary_key=True)
            password_hash = db.Column(db.String(64), nullable=False)

            def set_password(self, password):
                self.password_hash = hashlib.sha256(password.encode()).hexdigest()

            def check_password(self, password):
                return self.password_hash == hashlib.sha256(password.encode()).hexdigest()
        ''', _WIDENED_HEAD.format(imports="from flask_sqlalchemy import SQLAlchemy\n\ndb = SQLAlchemy()\n") + '''
class User(db.Model):
    __tablename__ = "users"

    id = db.Column(db.Integer, primary_key=True)
    password_hash = db.Column(db.String(255), nullable=False)

    def set_password(self, password):
        self.password_hash = _pbkdf2_password_hash(password)

    def check_password(self, password):
        if not password_hash_matches(password, self.password_hash, hashlib.sha256(password.encode()).hexdigest()):
            return False
        if password_needs_rehash(self.password_hash):
            self.password_hash = _pbkdf2_password_hash(password)
        return True
''', path="app/models.py", extra={"migrations/versions/0001_initial.py": '''
        import sqlalchemy as sa
        from alembic import op

        revision = "0001"
        down_revision = None


        def upgrade():
            op.create_table("users", sa.Column("id", sa.Integer(), primary_key=True),
                            sa.Column("password_hash", sa.String(64), nullable=False))
        '''}, database="postgresql", note="String(64) too short for the hash: widened on the model and by an "
                                          "Alembic revision (batch alter_column, with a downgrade)"),
    Example(files={"kiosk/models.py": _dedent(_DJANGO_SHORT), "kiosk/migrations/0001_initial.py": _dedent('''
        from django.db import migrations, models


        class Migration(migrations.Migration):
            initial = True
            dependencies = []
            operations = [
                migrations.CreateModel(name="Operator", fields=[
                    ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                    ("pin_hash", models.CharField(max_length=64)),
                ]),
            ]
        ''')}, fixed={"kiosk/models.py": _WIDENED_HEAD.format(imports="from django.db import models\n") + '''
class Operator(models.Model):
    pin_hash = models.CharField(max_length=255)

    def set_pin(self, pin):
        self.pin_hash = _pbkdf2_password_hash(pin)

    def check_pin(self, pin):
        if not password_hash_matches(pin, self.pin_hash, hashlib.md5(pin.encode()).hexdigest()):
            return False
        if password_needs_rehash(self.pin_hash):
            self.pin_hash = _pbkdf2_password_hash(pin)
            if self.pk:
                self.save(update_fields=["pin_hash"])
        return True
''', "kiosk/migrations/0002_alter_operator_pin_hash.py": _dedent('''
        from django.db import migrations, models


        class Migration(migrations.Migration):

            dependencies = [
                ("kiosk", "0001_initial"),
            ]

            operations = [
                migrations.AlterField(
                    model_name="operator",
                    name="pin_hash",
                    field=models.CharField(max_length=255),
                ),
            ]
        ''')}, database="postgresql", note="CharField(max_length=64): widened on the model and by the app's next "
                                           "migration, AlterField with the whole field"),
]
