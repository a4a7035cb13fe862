-- The funding and exchange accounts split by environment, so that sandbox value never mixes
-- with live value: 'funding:USD' becomes 'funding:sandbox:USD' or 'funding:live:USD', by the
-- environment of the payer whose wallet is in the same posting (every top-up, payment,
-- reversal and refund has one). A posting without one stops the migration.

UPDATE entry SET account = substr(account, 1, instr(account, ':')) || (
    SELECT p.environment FROM entry w JOIN payer p ON w.account = 'wallet:' || p.payer_id || ':' || w.currency
    WHERE w.posting_id = entry.posting_id
    LIMIT 1
) || ':' || currency
WHERE account IN ('funding:' || currency, 'exchange:' || currency);
