-- The developer center's kept daily figures (as SQLite's main/0014_activity_days.sql, which
-- says what each column holds).
CREATE TABLE activity_day (
    client_id    TEXT COLLATE "C" NOT NULL,
    day          BIGINT NOT NULL,
    figure       TEXT COLLATE "C" NOT NULL CHECK (figure IN ('DAY', 'PAYMENT', 'REFUND', 'NOTIFICATION')),
    currency     TEXT COLLATE "C" NOT NULL,
    count        BIGINT NOT NULL,
    amount_minor BIGINT NOT NULL,
    delivered    BIGINT NOT NULL,
    failed       BIGINT NOT NULL,
    pending      BIGINT NOT NULL,
    PRIMARY KEY (client_id, day, figure, currency)
);
