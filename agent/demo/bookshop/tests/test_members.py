from bookshop.db import connect
from bookshop.members import authenticate, register


def test_register_then_log_in():
    connection = connect()
    register(connection, "ann@example.com", "correct horse")
    assert authenticate(connection, "ann@example.com", "correct horse")
    assert not authenticate(connection, "ann@example.com", "wrong")
    assert not authenticate(connection, "bob@example.com", "correct horse")
