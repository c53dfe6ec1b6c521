"""A small book catalogue on sqlite3."""
