"""`api` and `other` (two tenants of one ledger) and `bill`, as tests/credits has them."""

from tests.credits.conftest import api, bill, other

__all__ = ["api", "bill", "other"]
