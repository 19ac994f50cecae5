-- The institution a consortium's ledger belongs to (proxy/consortium/ledger_owner.py): one row,
-- written at the institution's first start. Payment rows name no institution, so this is what
-- stops a second institution from sharing the ledger (and posting the first one's payments).
CREATE TABLE ledger_owner (
    only_row     integer PRIMARY KEY CHECK (only_row = 1),
    institution  text NOT NULL
);
