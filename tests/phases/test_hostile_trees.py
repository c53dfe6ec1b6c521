"""Trees that are not tidy code: unparseable files, binaries, huge generated files, symlink loops, bad SQL."""

from __future__ import annotations

import os
from pathlib import Path

from tuber.phases.datamap.repo import MAX_FILE_BYTES, load_repo
from tuber.phases.diagnose import diagnose


def test_hostile_files_are_skipped_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def broken(:\n    pass\n")
    (tmp_path / "binary.py").write_bytes(b"\x00\x01\x02" * 100)
    (tmp_path / "latin1.py").write_bytes("x = 'caf\xe9'\n".encode("latin-1"))
    (tmp_path / "generated.py").write_text("X = 1\n" * (MAX_FILE_BYTES // 6 + 10))
    (tmp_path / "deep.py").write_text("x = " + "(" * 5000 + ")" * 5000 + "\n")
    (tmp_path / "bad.sql").write_text("CREATE TABLE (((;\nSELEC * FORM;\n")
    (tmp_path / "pkg").mkdir()
    os.symlink(tmp_path, tmp_path / "pkg" / "loop")
    os.symlink(tmp_path / "missing.py", tmp_path / "dangling.py")
    (tmp_path / "ok.py").write_text("import sqlite3\n\ndef f(conn, name):\n    return conn.execute(f\"SELECT * FROM t WHERE n = '{name}'\")\n")
    result = diagnose(load_repo(tmp_path))
    reasons = {s.path: s.reason for s in result.skipped}
    assert "cannot parse" in reasons["broken.py"]
    assert reasons["binary.py"] == "binary file"
    assert reasons["latin1.py"] == "not UTF-8 text"
    assert "larger than" in reasons["generated.py"]
    assert "cannot parse" in reasons["deep.py"] or "nesting" in reasons["deep.py"]
    assert "symbolic link" in reasons["dangling.py"]
    assert [f.path for f in result.findings if f.category == "sql_injection"] == ["ok.py"]
