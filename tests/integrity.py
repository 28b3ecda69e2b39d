"""Checks of a storage file's consistency shared by the storage and deletion tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

# Input/output rows whose value or call row is missing, and inputs whose source call is
# neither stored nor tombstoned (deleted while they still name it), values whose bytes are
# gone and bytes no value names (value_rows.py): each must never exist.
_BROKEN_SQL = """
SELECT
  (SELECT COUNT(*) FROM (SELECT call_id, cid FROM call_inputs UNION ALL
                         SELECT call_id, cid FROM call_outputs) r
   WHERE NOT EXISTS (SELECT 1 FROM vals v WHERE v.cid = r.cid)
      OR NOT EXISTS (SELECT 1 FROM calls c WHERE c.id = r.call_id))
  + (SELECT COUNT(*) FROM call_inputs i WHERE i.src_call IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM calls c WHERE c.id = i.src_call)
     AND NOT EXISTS (SELECT 1 FROM call_tombstones t WHERE t.id = i.src_call))
  + (SELECT COUNT(*) FROM val_rows r WHERE r.external = 2
     AND NOT EXISTS (SELECT 1 FROM val_bytes b WHERE b.id = r.data))
  + (SELECT COUNT(*) FROM val_bytes b WHERE b.id NOT IN (SELECT data FROM val_rows WHERE external = 2))
"""


def dangling_references(db: Path) -> int:
    """Rows that refer to a value or call the file does not hold: must always be 0."""
    with sqlite3.connect(db) as conn:
        return conn.execute(_BROKEN_SQL).fetchone()[0]
