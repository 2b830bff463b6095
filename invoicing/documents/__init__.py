"""Invoice and credit-note documents: a neutral model, its builders, PDF and UBL."""
