"""Collecting invoices: payment providers, their adapters, and the attempts made.

base.py        the gateway protocol: charge and refund, classified outcomes, config base
http.py        HTTP to a provider: retries of transient failures under the same key
stripe.py      the Stripe adapter (PaymentIntents and Refunds, idempotency keys)
adyen.py       the Adyen adapter (Checkout v71 card-on-file payments, refunds, HMAC)
gocardless.py  the GoCardless adapter (Direct Debit on a mandate, refunds, webhook check)
flutterwave.py the Flutterwave adapter (v3 tokenized charges, tx_ref, verif-hash check)
tap.py         the Tap adapter (saved-card token, MIT charge, reference.idempotent, hashstring)
moneyhash.py   the MoneyHash adapter (MIT intents on a card token, UUID keys, signature v3)
cashfree.py    the Cashfree adapter (charges on an on-demand subscription, webhook signature)
providers.py   a tenant's provider connections, and the gateway each one builds
collection.py  one attempt to collect an invoice (at finalize, at a dunning step)
"""
