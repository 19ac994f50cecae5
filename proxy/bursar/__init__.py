"""The bursar models (docs/bursar.md): fines billed to the student account through a file, the
bursar's payments posted back to Alma, and registration holds.

    export      the Analytics fines report -> the file the campus imports (CashNet/PeopleSoft)
    import      the bursar's payments file -> ledger payments (channel `bursar`) -> Alma
    holds       who to hold, and whose hold can be lifted since the last run

The posting worker of `patronpay serve` applies imported payments in Alma with the same
exactly-once rules as a CashNet payment.
"""
