-- A ledger as patronpay wrote it before numbered migrations (schema 1, PRAGMA user_version 1),
-- with a payment in every state; made by that version's proxy/db.py. tests/test_migrations.py
-- upgrades it. Do not edit.
PRAGMA user_version = 1;
BEGIN TRANSACTION;
CREATE TABLE allocations (
    id              INTEGER PRIMARY KEY,
    payment_id      TEXT NOT NULL REFERENCES payments (id),
    fee_id          TEXT NOT NULL,
    fee_type        TEXT NOT NULL,
    fee_label       TEXT NOT NULL DEFAULT '',
    planned_cents   INTEGER NOT NULL,
    amount_cents    INTEGER NOT NULL,
    unapplied_cents INTEGER NOT NULL DEFAULT 0,
    state           TEXT NOT NULL,
    origin          TEXT NOT NULL DEFAULT '',
    outcome         TEXT NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_attempt_at REAL,
    next_attempt_at REAL
);
INSERT INTO "allocations" VALUES(1,'00000000000000000000000000000001','7730018830004146','LOSTITEMREPLACEMENTFEE','Lost item',6000,6000,0,'planned','patron','',0,NULL,NULL);
INSERT INTO "allocations" VALUES(2,'00000000000000000000000000000001','7730012450004146','OVERDUEFINE','Overdue fine',200,200,0,'planned','patron','',0,NULL,NULL);
INSERT INTO "allocations" VALUES(3,'00000000000000000000000000000002','7730018830004146','LOSTITEMREPLACEMENTFEE','Lost item',6000,6000,0,'queued','patron','',0,NULL,1760000000.0);
INSERT INTO "allocations" VALUES(4,'00000000000000000000000000000002','7730012450004146','OVERDUEFINE','Overdue fine',200,200,0,'queued','patron','',0,NULL,1760000000.0);
INSERT INTO "allocations" VALUES(5,'00000000000000000000000000000003','7730018830004146','LOSTITEMREPLACEMENTFEE','Lost item',6000,6000,0,'posted','patron','posted in Alma',0,NULL,NULL);
INSERT INTO "allocations" VALUES(6,'00000000000000000000000000000003','7730012450004146','OVERDUEFINE','Overdue fine',200,200,0,'posted','patron','posted in Alma',0,NULL,NULL);
INSERT INTO "allocations" VALUES(7,'00000000000000000000000000000004','7730018830004146','LOSTITEMREPLACEMENTFEE','Lost item',6000,6000,0,'planned','patron','',0,NULL,NULL);
INSERT INTO "allocations" VALUES(8,'00000000000000000000000000000004','7730012450004146','OVERDUEFINE','Overdue fine',200,200,0,'planned','patron','',0,NULL,NULL);
INSERT INTO "allocations" VALUES(9,'00000000000000000000000000000005','7730018830004146','LOSTITEMREPLACEMENTFEE','Lost item',6000,6000,0,'planned','patron','',0,NULL,NULL);
INSERT INTO "allocations" VALUES(10,'00000000000000000000000000000005','7730012450004146','OVERDUEFINE','Overdue fine',200,200,0,'planned','patron','',0,NULL,NULL);
INSERT INTO "allocations" VALUES(11,'00000000000000000000000000000006','7730018830004146','LOSTITEMREPLACEMENTFEE','Lost item',6000,6000,0,'planned','patron','',0,NULL,NULL);
INSERT INTO "allocations" VALUES(12,'00000000000000000000000000000006','7730012450004146','OVERDUEFINE','Overdue fine',200,200,0,'planned','patron','',0,NULL,NULL);
INSERT INTO "allocations" VALUES(13,'00000000000000000000000000000007','7730018830004146','LOSTITEMREPLACEMENTFEE','Lost item',6000,6000,0,'planned','patron','',0,NULL,NULL);
INSERT INTO "allocations" VALUES(14,'00000000000000000000000000000007','7730012450004146','OVERDUEFINE','Overdue fine',200,200,0,'planned','patron','',0,NULL,NULL);
INSERT INTO "allocations" VALUES(15,'00000000000000000000000000000008','7730018830004146','LOSTITEMREPLACEMENTFEE','Lost item',6000,6000,0,'planned','patron','',0,NULL,NULL);
INSERT INTO "allocations" VALUES(16,'00000000000000000000000000000008','7730012450004146','OVERDUEFINE','Overdue fine',200,200,0,'planned','patron','',0,NULL,NULL);
CREATE TABLE auth_failures (
    key  TEXT NOT NULL,
    at   REAL NOT NULL
);
INSERT INTO "auth_failures" VALUES('address:127.0.0.1',1760000000.0);
CREATE TABLE bursar_export_lines (
    export_id     INTEGER NOT NULL REFERENCES bursar_exports (id),
    campus_id     TEXT NOT NULL,
    primary_id    TEXT NOT NULL,
    fee_id        TEXT NOT NULL,
    amount_cents  INTEGER NOT NULL
);
INSERT INTO "bursar_export_lines" VALUES(1,'c','p','f',100);
CREATE TABLE bursar_exports (
    id            INTEGER PRIMARY KEY,
    at            REAL NOT NULL,
    day           TEXT NOT NULL,
    report_path   TEXT NOT NULL,
    output        TEXT NOT NULL,
    layout        TEXT NOT NULL,
    rows          INTEGER NOT NULL,
    patrons       INTEGER NOT NULL,
    total_cents   INTEGER NOT NULL,
    sha256        TEXT NOT NULL
);
INSERT INTO "bursar_exports" VALUES(1,1.0,'2025-10-09','r','o','l',1,1,100,'x');
CREATE TABLE bursar_hold_runs (
    id       INTEGER PRIMARY KEY,
    at       REAL NOT NULL,
    held     INTEGER NOT NULL,
    placed   INTEGER NOT NULL,
    lifted   INTEGER NOT NULL
);
CREATE TABLE bursar_holds (
    run_id      INTEGER NOT NULL REFERENCES bursar_hold_runs (id),
    primary_id  TEXT NOT NULL,
    campus_id   TEXT NOT NULL,
    reason      TEXT NOT NULL,
    PRIMARY KEY (run_id, primary_id)
);
CREATE TABLE bursar_import_rows (
    import_id       INTEGER NOT NULL REFERENCES bursar_imports (id),
    line            INTEGER NOT NULL,
    patron          TEXT NOT NULL,
    amount_cents    INTEGER,
    transaction_id  TEXT NOT NULL,
    payment_id      TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    detail          TEXT NOT NULL
);
CREATE TABLE bursar_imports (
    id        INTEGER PRIMARY KEY,
    at        REAL NOT NULL,
    name      TEXT NOT NULL,
    sha256    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    summary   TEXT NOT NULL
);
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    payment_id  TEXT,
    at          REAL NOT NULL,
    kind        TEXT NOT NULL,
    source      TEXT NOT NULL,
    detail      TEXT NOT NULL
);
INSERT INTO "events" VALUES(1,'00000000000000000000000000000001',1760000000.0,'created','patron','{"amount": "62.00", "channel": "web"}');
INSERT INTO "events" VALUES(2,'00000000000000000000000000000002',1760000000.0,'created','patron','{"amount": "62.00", "channel": "web"}');
INSERT INTO "events" VALUES(3,'00000000000000000000000000000002',1760000000.0,'notification','cashnet:127.0.0.1','{"fields": {"amount1": "60.00", "amount2": "2.00", "batchno": "7", "custcode": "mkowalski", "itemcnt": "2", "itemcode1": "LIB-LOST", "itemcode2": "LIB-OVERDUE", "ref1type1": "PAYMENT_ID", "ref1val1": "00000000000000000000000000000002", "result": "0", "tx": "200002"}, "kind": "success", "notice_id": 1, "outcome": "paid"}');
INSERT INTO "events" VALUES(4,'00000000000000000000000000000002',1760000000.0,'paid','cashnet:127.0.0.1','{"batchno": "7", "from": "pending", "tx": "200002"}');
INSERT INTO "events" VALUES(5,'00000000000000000000000000000003',1760000000.0,'created','patron','{"amount": "62.00", "channel": "web"}');
INSERT INTO "events" VALUES(6,'00000000000000000000000000000003',1760000000.0,'notification','cashnet:127.0.0.1','{"fields": {"amount1": "60.00", "amount2": "2.00", "batchno": "7", "custcode": "mkowalski", "itemcnt": "2", "itemcode1": "LIB-LOST", "itemcode2": "LIB-OVERDUE", "ref1type1": "PAYMENT_ID", "ref1val1": "00000000000000000000000000000003", "result": "0", "tx": "200003"}, "kind": "success", "notice_id": 2, "outcome": "paid"}');
INSERT INTO "events" VALUES(7,'00000000000000000000000000000003',1760000000.0,'paid','cashnet:127.0.0.1','{"batchno": "7", "from": "pending", "tx": "200003"}');
INSERT INTO "events" VALUES(8,'00000000000000000000000000000003',1760000000.0,'allocation_posted','worker','{"amount": "60.00", "fee_id": "7730018830004146", "outcome": "posted in Alma"}');
INSERT INTO "events" VALUES(9,'00000000000000000000000000000003',1760000000.0,'allocation_posted','worker','{"amount": "2.00", "fee_id": "7730012450004146", "outcome": "posted in Alma"}');
INSERT INTO "events" VALUES(10,'00000000000000000000000000000003',1760000000.0,'posted','worker','{"reason": ""}');
INSERT INTO "events" VALUES(11,'00000000000000000000000000000004',1760000000.0,'created','patron','{"amount": "62.00", "channel": "web"}');
INSERT INTO "events" VALUES(12,'00000000000000000000000000000004',1760000000.0,'notification','cashnet:127.0.0.1','{"fields": {"amount1": "60.00", "amount2": "2.00", "batchno": "7", "custcode": "mkowalski", "failedtx": "300004", "itemcnt": "2", "itemcode1": "LIB-LOST", "itemcode2": "LIB-OVERDUE", "ref1type1": "PAYMENT_ID", "ref1val1": "00000000000000000000000000000004", "result": "5"}, "kind": "failure", "notice_id": 3, "outcome": "declined"}');
INSERT INTO "events" VALUES(13,'00000000000000000000000000000004',1760000000.0,'declined','cashnet:127.0.0.1','{"failedtx": "300004", "from": "pending", "reason": "CashNet result 5", "result": "5"}');
INSERT INTO "events" VALUES(14,'00000000000000000000000000000005',1760000000.0,'created','patron','{"amount": "62.00", "channel": "web"}');
INSERT INTO "events" VALUES(15,'00000000000000000000000000000005',1760000000.0,'cancelled','patron','{"from": "pending", "reason": "cancelled by the patron"}');
INSERT INTO "events" VALUES(16,'00000000000000000000000000000006',1760000000.0,'created','patron','{"amount": "62.00", "channel": "web"}');
INSERT INTO "events" VALUES(17,'00000000000000000000000000000006',1760000000.0,'notification','cashnet:127.0.0.1','{"fields": {"amount1": "60.00", "amount2": "3.00", "batchno": "7", "custcode": "mkowalski", "itemcnt": "2", "itemcode1": "LIB-LOST", "itemcode2": "LIB-OVERDUE", "ref1type1": "PAYMENT_ID", "ref1val1": "00000000000000000000000000000006", "result": "0", "tx": "200006"}, "kind": "success", "notice_id": 4, "outcome": "attention"}');
INSERT INTO "events" VALUES(18,'00000000000000000000000000000006',1760000000.0,'attention','cashnet:127.0.0.1','{"from": "pending", "reason": "amount mismatch: line 2: amount 3.00, issued 2.00", "tx": "200006"}');
INSERT INTO "events" VALUES(19,'00000000000000000000000000000007',1760000000.0,'created','patron','{"amount": "62.00", "channel": "web"}');
INSERT INTO "events" VALUES(20,'00000000000000000000000000000007',1760000000.0,'notification','cashnet:127.0.0.1','{"fields": {"amount1": "60.00", "amount2": "3.00", "batchno": "7", "custcode": "mkowalski", "itemcnt": "2", "itemcode1": "LIB-LOST", "itemcode2": "LIB-OVERDUE", "ref1type1": "PAYMENT_ID", "ref1val1": "00000000000000000000000000000007", "result": "0", "tx": "200007"}, "kind": "success", "notice_id": 5, "outcome": "attention"}');
INSERT INTO "events" VALUES(21,'00000000000000000000000000000007',1760000000.0,'attention','cashnet:127.0.0.1','{"from": "pending", "reason": "amount mismatch: line 2: amount 3.00, issued 2.00", "tx": "200007"}');
INSERT INTO "events" VALUES(22,'00000000000000000000000000000007',1760000000.0,'resolved','staff:staff','{"note": "refunded", "reason": "refunded"}');
INSERT INTO "events" VALUES(23,'00000000000000000000000000000008',1759992800.0,'created','patron','{"amount": "62.00", "channel": "web"}');
INSERT INTO "events" VALUES(24,'00000000000000000000000000000008',1760000000.0,'expired','timer','{"from": "pending", "reason": "no CashNet notification"}');
CREATE TABLE kiosk_nonces (
    kiosk_id  TEXT NOT NULL,
    nonce     TEXT NOT NULL,
    at        REAL NOT NULL,
    PRIMARY KEY (kiosk_id, nonce)
);
CREATE TABLE kiosk_reports (
    kiosk_id        TEXT PRIMARY KEY,
    heard_at        REAL NOT NULL,
    version         TEXT NOT NULL,
    reader          TEXT NOT NULL,
    printer         TEXT NOT NULL,
    last_scan_at    REAL,
    last_payment_at REAL,
    disk_free_bytes INTEGER,
    offline_since   REAL
);
CREATE TABLE leases (
    payment_id  TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    until       REAL NOT NULL
);
CREATE TABLE lines (
    payment_id    TEXT NOT NULL REFERENCES payments (id),
    number        INTEGER NOT NULL,
    item_code     TEXT NOT NULL,
    amount_cents  INTEGER NOT NULL,
    description   TEXT NOT NULL,
    PRIMARY KEY (payment_id, number)
);
INSERT INTO "lines" VALUES('00000000000000000000000000000001',1,'LIB-LOST',6000,'Lost item replacement fee');
INSERT INTO "lines" VALUES('00000000000000000000000000000001',2,'LIB-OVERDUE',200,'Overdue fine');
INSERT INTO "lines" VALUES('00000000000000000000000000000002',1,'LIB-LOST',6000,'Lost item replacement fee');
INSERT INTO "lines" VALUES('00000000000000000000000000000002',2,'LIB-OVERDUE',200,'Overdue fine');
INSERT INTO "lines" VALUES('00000000000000000000000000000003',1,'LIB-LOST',6000,'Lost item replacement fee');
INSERT INTO "lines" VALUES('00000000000000000000000000000003',2,'LIB-OVERDUE',200,'Overdue fine');
INSERT INTO "lines" VALUES('00000000000000000000000000000004',1,'LIB-LOST',6000,'Lost item replacement fee');
INSERT INTO "lines" VALUES('00000000000000000000000000000004',2,'LIB-OVERDUE',200,'Overdue fine');
INSERT INTO "lines" VALUES('00000000000000000000000000000005',1,'LIB-LOST',6000,'Lost item replacement fee');
INSERT INTO "lines" VALUES('00000000000000000000000000000005',2,'LIB-OVERDUE',200,'Overdue fine');
INSERT INTO "lines" VALUES('00000000000000000000000000000006',1,'LIB-LOST',6000,'Lost item replacement fee');
INSERT INTO "lines" VALUES('00000000000000000000000000000006',2,'LIB-OVERDUE',200,'Overdue fine');
INSERT INTO "lines" VALUES('00000000000000000000000000000007',1,'LIB-LOST',6000,'Lost item replacement fee');
INSERT INTO "lines" VALUES('00000000000000000000000000000007',2,'LIB-OVERDUE',200,'Overdue fine');
INSERT INTO "lines" VALUES('00000000000000000000000000000008',1,'LIB-LOST',6000,'Lost item replacement fee');
INSERT INTO "lines" VALUES('00000000000000000000000000000008',2,'LIB-OVERDUE',200,'Overdue fine');
CREATE TABLE mail_alerts (
    id          INTEGER PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    payment_id  TEXT,
    detail      TEXT NOT NULL,
    at          REAL NOT NULL,
    outbox_id   INTEGER REFERENCES mail_outbox (id)
);
CREATE TABLE mail_marks (
    name   TEXT PRIMARY KEY,
    value  REAL NOT NULL
);
INSERT INTO "mail_marks" VALUES('events',0.0);
CREATE TABLE mail_outbox (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,
    key             TEXT NOT NULL UNIQUE,
    message_id      TEXT NOT NULL,
    payment_id      TEXT,
    state           TEXT NOT NULL,
    reason          TEXT NOT NULL DEFAULT '',
    recipients      TEXT NOT NULL DEFAULT '',
    message         BLOB,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    owner           TEXT NOT NULL DEFAULT '',
    lease_until     REAL,
    created_at      REAL NOT NULL,
    sent_at         REAL
);
CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY,
    payment_id   TEXT,
    kind         TEXT NOT NULL,
    dedupe_key   TEXT UNIQUE,
    fields       TEXT NOT NULL,
    peer         TEXT NOT NULL,
    received_at  REAL NOT NULL,
    outcome      TEXT NOT NULL
);
INSERT INTO "notifications" VALUES(1,'00000000000000000000000000000002','success','tx:200002','{"amount1": "60.00", "amount2": "2.00", "batchno": "7", "custcode": "mkowalski", "itemcnt": "2", "itemcode1": "LIB-LOST", "itemcode2": "LIB-OVERDUE", "ref1type1": "PAYMENT_ID", "ref1val1": "00000000000000000000000000000002", "result": "0", "tx": "200002"}','127.0.0.1',1760000000.0,'paid');
INSERT INTO "notifications" VALUES(2,'00000000000000000000000000000003','success','tx:200003','{"amount1": "60.00", "amount2": "2.00", "batchno": "7", "custcode": "mkowalski", "itemcnt": "2", "itemcode1": "LIB-LOST", "itemcode2": "LIB-OVERDUE", "ref1type1": "PAYMENT_ID", "ref1val1": "00000000000000000000000000000003", "result": "0", "tx": "200003"}','127.0.0.1',1760000000.0,'paid');
INSERT INTO "notifications" VALUES(3,'00000000000000000000000000000004','failure','failed:00000000000000000000000000000004:300004','{"amount1": "60.00", "amount2": "2.00", "batchno": "7", "custcode": "mkowalski", "failedtx": "300004", "itemcnt": "2", "itemcode1": "LIB-LOST", "itemcode2": "LIB-OVERDUE", "ref1type1": "PAYMENT_ID", "ref1val1": "00000000000000000000000000000004", "result": "5"}','127.0.0.1',1760000000.0,'declined');
INSERT INTO "notifications" VALUES(4,'00000000000000000000000000000006','success','tx:200006','{"amount1": "60.00", "amount2": "3.00", "batchno": "7", "custcode": "mkowalski", "itemcnt": "2", "itemcode1": "LIB-LOST", "itemcode2": "LIB-OVERDUE", "ref1type1": "PAYMENT_ID", "ref1val1": "00000000000000000000000000000006", "result": "0", "tx": "200006"}','127.0.0.1',1760000000.0,'attention');
INSERT INTO "notifications" VALUES(5,'00000000000000000000000000000007','success','tx:200007','{"amount1": "60.00", "amount2": "3.00", "batchno": "7", "custcode": "mkowalski", "itemcnt": "2", "itemcode1": "LIB-LOST", "itemcode2": "LIB-OVERDUE", "ref1type1": "PAYMENT_ID", "ref1val1": "00000000000000000000000000000007", "result": "0", "tx": "200007"}','127.0.0.1',1760000000.0,'attention');
CREATE TABLE payments (
    id            TEXT PRIMARY KEY,
    patron_id     TEXT NOT NULL,
    patron_name   TEXT NOT NULL,
    channel       TEXT NOT NULL,
    session_id    TEXT NOT NULL DEFAULT '',
    amount_cents  INTEGER NOT NULL CHECK (amount_cents > 0),
    currency      TEXT NOT NULL,
    state         TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    review        TEXT NOT NULL DEFAULT '',
    cashnet_tx    TEXT,
    batchno       TEXT NOT NULL DEFAULT '',
    effdate       TEXT NOT NULL DEFAULT '',
    pmtcode       TEXT NOT NULL DEFAULT '',
    custcode      TEXT NOT NULL,
    checkout      TEXT NOT NULL,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    paid_at       REAL,
    posted_at     REAL
, language TEXT NOT NULL DEFAULT '');
INSERT INTO "payments" VALUES('00000000000000000000000000000001','mkowalski','Maria Kowalski','web','s',6200,'USD','pending','','',NULL,'','','','mkowalski','{"action": "x", "method": "POST", "fields": {}}',1760000000.0,1760000000.0,NULL,NULL,'');
INSERT INTO "payments" VALUES('00000000000000000000000000000002','mkowalski','Maria Kowalski','web','s',6200,'USD','paid','','','200002','7','','','mkowalski','{"action": "x", "method": "POST", "fields": {}}',1760000000.0,1760000000.0,1760000000.0,NULL,'');
INSERT INTO "payments" VALUES('00000000000000000000000000000003','mkowalski','Maria Kowalski','web','s',6200,'USD','posted','','','200003','7','','','mkowalski','{"action": "x", "method": "POST", "fields": {}}',1760000000.0,1760000000.0,1760000000.0,1760000000.0,'');
INSERT INTO "payments" VALUES('00000000000000000000000000000004','mkowalski','Maria Kowalski','web','s',6200,'USD','declined','CashNet result 5','',NULL,'','','','mkowalski','{"action": "x", "method": "POST", "fields": {}}',1760000000.0,1760000000.0,NULL,NULL,'');
INSERT INTO "payments" VALUES('00000000000000000000000000000005','mkowalski','Maria Kowalski','web','s',6200,'USD','cancelled','cancelled by the patron','',NULL,'','','','mkowalski','{"action": "x", "method": "POST", "fields": {}}',1760000000.0,1760000000.0,NULL,NULL,'');
INSERT INTO "payments" VALUES('00000000000000000000000000000006','mkowalski','Maria Kowalski','web','s',6200,'USD','attention','amount mismatch: line 2: amount 3.00, issued 2.00','','200006','7','','','mkowalski','{"action": "x", "method": "POST", "fields": {}}',1760000000.0,1760000000.0,1760000000.0,NULL,'');
INSERT INTO "payments" VALUES('00000000000000000000000000000007','mkowalski','Maria Kowalski','web','s',6200,'USD','resolved','refunded','','200007','7','','','mkowalski','{"action": "x", "method": "POST", "fields": {}}',1760000000.0,1760000000.0,1760000000.0,NULL,'');
INSERT INTO "payments" VALUES('00000000000000000000000000000008','mkowalski','Maria Kowalski','web','s',6200,'USD','expired','no CashNet notification','',NULL,'','','','mkowalski','{"action": "x", "method": "POST", "fields": {}}',1759992800.0,1760000000.0,NULL,NULL,'');
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    patron_id     TEXT NOT NULL,
    first_name    TEXT NOT NULL,
    last_name     TEXT NOT NULL,
    email         TEXT NOT NULL,
    account_type  TEXT NOT NULL,
    method        TEXT NOT NULL,
    channel       TEXT NOT NULL,
    csrf_token    TEXT NOT NULL,
    created_at    REAL NOT NULL,
    last_seen_at  REAL NOT NULL,
    ended_at      REAL
, cas_ticket_hash TEXT NOT NULL DEFAULT '');
CREATE TABLE spent_tokens (
    token_id    TEXT PRIMARY KEY,
    until       REAL NOT NULL
);
CREATE TABLE staff_sessions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    method        TEXT NOT NULL,
    granted_by    TEXT NOT NULL,
    csrf_token    TEXT NOT NULL,
    created_at    REAL NOT NULL,
    last_seen_at  REAL NOT NULL,
    ended_at      REAL
);
CREATE UNIQUE INDEX payments_by_tx ON payments (cashnet_tx) WHERE cashnet_tx IS NOT NULL;
CREATE INDEX payments_by_patron ON payments (patron_id, created_at);
CREATE INDEX payments_by_state ON payments (state, created_at);
CREATE INDEX allocations_by_payment ON allocations (payment_id);
CREATE INDEX allocations_due ON allocations (state, next_attempt_at);
CREATE INDEX events_by_payment ON events (payment_id, id);
CREATE INDEX auth_failures_by_key ON auth_failures (key, at);
CREATE INDEX spent_tokens_by_until ON spent_tokens (until);
CREATE INDEX sessions_by_cas_ticket ON sessions (cas_ticket_hash)
    WHERE cas_ticket_hash != '';
CREATE INDEX mail_outbox_due ON mail_outbox (state, next_attempt_at);
CREATE INDEX mail_alerts_waiting ON mail_alerts (outbox_id, id);
CREATE INDEX bursar_export_lines_by_export ON bursar_export_lines (export_id);
COMMIT;
