"""Query and delete blocks: patterns built by running compiled code, matched in SQL."""
