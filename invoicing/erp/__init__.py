"""ERP sync: finalized invoices and credit notes pushed to the tenant's accounting system."""
