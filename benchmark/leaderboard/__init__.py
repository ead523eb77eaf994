"""Leaderboards: entries (one JSON file per model, the source of truth) and everything generated from them.

- `entries`: the schema, validation on every read and write, merging a run into an entry;
- `boards`: the ranked data model (one Board per target and suite) and the tidy tables;
- `markdown`, `html`, `plots`: renderings of the boards; `examples`: the saved example images;
- `report`: regenerate a board folder from its entries; `submit`: publish a run under `lock.board_lock`.
"""
from __future__ import annotations

from .entries import EntryError, read_entries, read_entry, validate_entry, write_entry
from .lock import board_lock
from .report import regenerate, write_reports

__all__ = ["EntryError", "board_lock", "read_entries", "read_entry", "regenerate", "validate_entry", "write_entry",
           "write_reports"]
