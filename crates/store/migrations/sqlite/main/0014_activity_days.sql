-- The developer center's daily figures of days that can no longer change (older than the
-- horizon the caller names: payment expiry, notification retries and asynchronous refunds all
-- end within it), computed once from the rows and kept, so that the home page's charts read
-- a month of a large merchant from 30 kept rows a figure instead of every payment.
-- `figure` is DAY (the day was computed; its figures may be none), PAYMENT or REFUND (per
-- currency: count and amount of successful ones) or NOTIFICATION (by outcome).
CREATE TABLE activity_day (
    client_id    TEXT NOT NULL,
    day          INTEGER NOT NULL,
    figure       TEXT NOT NULL CHECK (figure IN ('DAY', 'PAYMENT', 'REFUND', 'NOTIFICATION')),
    currency     TEXT NOT NULL,
    count        INTEGER NOT NULL,
    amount_minor INTEGER NOT NULL,
    delivered    INTEGER NOT NULL,
    failed       INTEGER NOT NULL,
    pending      INTEGER NOT NULL,
    PRIMARY KEY (client_id, day, figure, currency)
);
