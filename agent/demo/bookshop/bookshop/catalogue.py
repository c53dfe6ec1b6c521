"""Looking books up."""


def add_book(connection, title, author, shelf):
    cursor = connection.execute(
        "INSERT INTO books (title, author, shelf) VALUES (?, ?, ?)", (title, author, shelf)
    )
    connection.commit()
    return cursor.lastrowid


def books_by_author(connection, author):
    """Every book by one author, for the search page."""
    query = f"SELECT id, title, author FROM books WHERE author = '{author}' ORDER BY title"
    return [dict(row) for row in connection.execute(query).fetchall()]


def books_on_shelf(connection, shelf, limit=20):
    rows = connection.execute(
        "SELECT id, title FROM books WHERE shelf = ? ORDER BY title LIMIT ?", (shelf, limit)
    ).fetchall()
    return [dict(row) for row in rows]
