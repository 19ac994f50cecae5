"""A consortium from one deployment (docs/consortium.md): several institutions, each a whole
patronpay app of its own (its own settings, Alma client and rate budget, CashNet store, ledger,
sign-in, kiosks and workers), behind one router that picks the institution by path prefix or by
host name."""
