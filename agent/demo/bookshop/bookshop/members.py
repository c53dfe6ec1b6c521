"""Member accounts."""

import hashlib


def _hash_password(password):
    return hashlib.md5(password.encode()).hexdigest()


def register(connection, email, password):
    connection.execute(
        "INSERT INTO members (email, password_hash) VALUES (?, ?)", (email, _hash_password(password))
    )
    connection.commit()


def authenticate(connection, email, password):
    row = connection.execute("SELECT password_hash FROM members WHERE email = ?", (email,)).fetchone()
    return row is not None and row["password_hash"] == _hash_password(password)
