-- A participant's own fee schedule and settlement currency; NULL takes the platform's default
-- (the settings), or for the settlement currency each transaction's own currency.
ALTER TABLE participant ADD COLUMN fee_rate_bps INTEGER CHECK (fee_rate_bps BETWEEN 0 AND 10000);
ALTER TABLE participant ADD COLUMN fee_fixed TEXT;
ALTER TABLE participant ADD COLUMN fee_tax_rate_bps INTEGER CHECK (fee_tax_rate_bps BETWEEN 0 AND 10000);
ALTER TABLE participant ADD COLUMN settlement_currency TEXT;
