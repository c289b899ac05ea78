"""Errors a user can act on. The CLI turns these into one clear line and exit code 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: names the file, the field and what was expected."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None):
        self.file = file
        self.field = field
        self.detail = message
        where = ""
        if file:
            where = f"{file}"
            if field:
                where += f": field '{field}'"
            where += ": "
        elif field:
            where = f"field '{field}': "
        super().__init__(where + message)
