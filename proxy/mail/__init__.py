"""E-mail: receipts for patrons and alerts for staff, from a durable outbox in the ledger
(docs/staff.md#e-mail).

    outbox    the ledger's side: what becomes mail (derived from the event trail in one
              transaction), claiming a message to send, recording what the server said
    alerts    which ledger events alert staff (one entry each), the digest and its rate bound
    compose   the messages: receipts (text and HTML, in the patron's language) and alerts
    smtp      PATRONPAY_SMTP_URL and one SMTP conversation per message
    addresses e-mail addresses in settings and from Alma, checked
    worker    the loop inside `patronpay serve` that derives, composes and sends

Nothing here is imported by the settings except `smtp` and `addresses`, which import nothing of
patronpay's own.
"""
