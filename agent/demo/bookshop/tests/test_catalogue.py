from bookshop.catalogue import add_book, books_by_author, books_on_shelf
from bookshop.db import connect


def make_catalogue():
    connection = connect()
    add_book(connection, "Emma", "Jane Austen", "classics")
    add_book(connection, "Persuasion", "Jane Austen", "classics")
    add_book(connection, "Dracula", "Bram Stoker", "horror")
    return connection


def test_books_by_author_returns_only_that_author():
    titles = [b["title"] for b in books_by_author(make_catalogue(), "Jane Austen")]
    assert titles == ["Emma", "Persuasion"]


def test_books_on_shelf():
    assert [b["title"] for b in books_on_shelf(make_catalogue(), "classics")] == ["Emma", "Persuasion"]
