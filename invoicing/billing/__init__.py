"""Bill runs: period close for a tenant's subscriptions, as a package split by idea.

runs        bill-run rows: create, get, status and progress
selection   which (subscription, period) items a window bills (pure)
loading     subscriptions read page by page; invoiced keys
usage       the port: what a bill run needs of usage (ClickHouse: streams.usage_store)
contexts    coupons, wallets, rollover for a batch, loaded in bulk
late        late usage, billed through the injected clock's cutoff
writer      invoice and line rows, bulk inserts
effects     coupon uses, wallet debits, rollover buckets, applied and reverted
runner      BillRunner: the run, chunk by chunk
scheduler   close_period(now): bill last month, finalize drafts past their grace
"""

from invoicing.billing.runner import BillRunner
from invoicing.billing.runs import create_bill_run, get_bill_run

__all__ = ["BillRunner", "create_bill_run", "get_bill_run"]
