"""One torch thread for the minds' tests, as for the models' (see test/models/conftest.py)."""

from test.models.conftest import one_torch_thread

__all__ = ["one_torch_thread"]
