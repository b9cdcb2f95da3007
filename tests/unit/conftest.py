"""The unit tier: pure tests, no process, socket or database (tests/purity.py enforces it, here only)."""

from tests.purity import pure  # noqa: F401  an autouse fixture: every test in this folder gets it
