"""`api` (a fresh tenant's client on each backend) and the UBL 2.1 schemas.

The schemas come from infra/ubl_schemas.sh (pinned, checksummed, cached in .cache/);
this fixture runs it when `make test` has not, and a failure to get them fails the
tests that need them: they are never skipped.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from tests.helpers.ledger_api import ApiClient, ledger_api

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def api(ledger_url: str, tmp_path: Path) -> Iterator[ApiClient]:
    with ledger_api(ledger_url, tmp_path) as client:
        yield client


class UblSchemas:
    """The official UBL 2.1 Invoice and CreditNote schemas, loaded once."""

    def __init__(self, folder: Path) -> None:
        self.invoice = etree.XMLSchema(etree.parse(str(folder / "maindoc/UBL-Invoice-2.1.xsd")))
        self.credit_note = etree.XMLSchema(
            etree.parse(str(folder / "maindoc/UBL-CreditNote-2.1.xsd"))
        )

    @staticmethod
    def check(schema: etree.XMLSchema, xml: bytes) -> etree._Element:
        """Parse `xml` and insist it is valid; returns its root."""
        root = etree.fromstring(xml)
        if not schema.validate(root):
            raise AssertionError(f"not valid UBL 2.1:\n{schema.error_log}")
        return root


@pytest.fixture(scope="session")
def ubl() -> UblSchemas:
    result = subprocess.run(
        [str(ROOT / "infra/ubl_schemas.sh")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"infra/ubl_schemas.sh failed: {result.stderr}"
    return UblSchemas(Path(result.stdout.strip()))
