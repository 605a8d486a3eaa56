"""What the store raises. Every error a caller can act on is one of these, never a driver error.

``ValidationError`` names the field (``"balance: at most 6 decimal places"``) so the web manager
can put the message beside the right input; the other classes say what kind of refusal it was.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of everything the store raises on purpose."""


class ValidationError(StoreError, ValueError):
    """A value is not acceptable; ``field`` names it, the message starts with it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class NotFoundError(StoreError, LookupError):
    """No such record, or not one the caller's scope may see (an agent is never told which)."""


class PermissionDeniedError(StoreError, PermissionError):
    """The caller's scope (an agent and its authorisations) does not allow the operation."""


class AppendOnlyError(StoreError):
    """Payment records are never changed or deleted one by one; corrections are new records."""


class ConflictError(StoreError):
    """The database refused the change (a constraint the checks before it could not see)."""


class SchemaError(StoreError):
    """The database schema is not one this code can use."""


class SchemaTooNewError(SchemaError):
    """The database was migrated by a newer softswitch than this one."""
