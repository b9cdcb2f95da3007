"""lastmile's core: records, ports, config, wiring, the stand-in supervisor and the CLI.

Nothing in this package imports an adapter, the serving app or the training job; see
``tests/unit/test_boundaries.py``.
"""

from harness.domain.errors import LastmileError, UserError

__all__ = ["LastmileError", "UserError"]
