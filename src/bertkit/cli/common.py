"""What every verb module shares: the one-line user error."""
from __future__ import annotations


class UserError(Exception):
    """An error caused by the user's input: printed as one line, no traceback."""
