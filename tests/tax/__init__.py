"""Tests of invoicing/tax; the loopback server its adapter tests use is shared."""

from tests.helpers.loopback import LoopbackServer, Request, Response

__all__ = ["LoopbackServer", "Request", "Response"]
