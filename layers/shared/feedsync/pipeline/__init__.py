"""Pipeline steps: each takes stores and settings, and returns a JSON-ready result."""
