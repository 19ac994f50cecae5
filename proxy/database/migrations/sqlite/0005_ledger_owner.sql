-- The institution a consortium's ledger belongs to (proxy/consortium/ledger_owner.py): one row,
-- written at the institution's first start. Empty outside a consortium.
CREATE TABLE ledger_owner (
    only_row     INTEGER PRIMARY KEY CHECK (only_row = 1),
    institution  TEXT NOT NULL
);

PRAGMA user_version = 5;
