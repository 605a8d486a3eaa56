"""The API route modules, one per resource family (docs/api.md)."""
