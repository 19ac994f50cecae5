-- The institution each payment was made for (docs/consortium.md#configuration): its code, or
-- '' outside a consortium, where nothing names one. A consortium's ledger started before this
-- step already names its owner (0005): its payments are that institution's. A ledger no
-- institution has claimed yet keeps '' until one does (proxy/consortium/ledger_owner.py
-- fills them then, in the claim's transaction).
ALTER TABLE payments ADD COLUMN institution TEXT NOT NULL DEFAULT '';
UPDATE payments SET institution = (SELECT institution FROM ledger_owner WHERE only_row = 1)
    WHERE EXISTS (SELECT 1 FROM ledger_owner WHERE only_row = 1);

PRAGMA user_version = 6;
