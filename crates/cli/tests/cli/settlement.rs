//! Fees, a sandbox settlement on demand, the three files, payouts and the reconcile commands,
//! end to end through `ocpay serve` and the commands an operator and a merchant run.

use std::path::Path;

use serde_json::Value;

use super::{json, ocpay, sandbox_merchant};

fn pay_and_wallet_pay(profile: &str, amount: &str) -> Value {
    let paid = json(&ocpay(&["pay", "--profile", profile, "--amount", amount, "--currency", "USD"]));
    let code = paid["orderCodeForm"]["codeDetails"][0]["codeValue"].as_str().unwrap().to_owned();
    let wallet = ocpay(&["wallet", "pay", &code]);
    assert!(wallet.status.success(), "{}", String::from_utf8_lossy(&wallet.stdout));
    paid
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().lines().map(str::to_owned).collect()
}

#[test]
fn a_sandbox_day_settles_with_fees_into_files_that_reconcile() {
    let (dir, data, _server, merchant) = sandbox_merchant();
    let client_id = merchant["clientId"].as_str().unwrap().to_owned();
    let profile = merchant["profile"].as_str().unwrap().to_owned();
    let updated = json(&ocpay(&[
        "participant",
        "update",
        "--data-dir",
        &data,
        "--client-id",
        &client_id,
        "--fee-rate-bps",
        "250",
        "--fee-fixed",
        "0.30",
        "--fee-currency",
        "USD",
        "--fee-tax-rate-bps",
        "1000",
    ]));
    assert_eq!(updated["fees"]["rateBps"], 250, "{updated}");
    assert_eq!(updated["fees"]["fixed"]["USD"], "0.30", "{updated}");

    // Fees: 2.5 % + 0.30, tax 10 % of the fee, each rounded half up to the cent.
    // 10.00 → fee 0.55 (0.25 + 0.30), tax 0.06 (0.055); net 9.39.
    pay_and_wallet_pay(&profile, "1000");
    // 5.00 → fee 0.43 (0.125 → 0.13, + 0.30), tax 0.04; net 4.53. Refunded 2.00: 40 % of the
    // fee (0.172 → 0.17) and of its tax (0.016 → 0.02) come back; net -1.81.
    let second = pay_and_wallet_pay(&profile, "500");
    let refunded = ocpay(&[
        "refund",
        "--profile",
        &profile,
        "--payment-id",
        second["paymentId"].as_str().unwrap(),
        "--amount",
        "200",
        "--currency",
        "USD",
    ]);
    assert!(refunded.status.success(), "{}", String::from_utf8_lossy(&refunded.stdout));
    // 3.00 → fee 0.38, tax 0.04; net 2.58; then cancelled: all of it comes back, net -2.58.
    let third = pay_and_wallet_pay(&profile, "300");
    let cancelled =
        ocpay(&["cancel", "--profile", &profile, "--payment-id", third["paymentId"].as_str().unwrap()]);
    assert!(cancelled.status.success(), "{}", String::from_utf8_lossy(&cancelled.stdout));

    let settled = json(&ocpay(&["settle", "--data-dir", &data, "--client-id", &client_id, "--now"]));
    let batches = settled["batches"].as_array().unwrap();
    assert_eq!(batches.len(), 1, "{settled}");
    let batch = &batches[0];
    assert_eq!(batch["count"], 5, "three payments, a refund and a cancel: {batch}");
    assert_eq!(batch["settlementCurrency"], "USD");
    assert_eq!(batch["settlementAmount"], "12.11", "9.39 + 4.53 - 1.81 + 2.58 - 2.58: {batch}");
    assert_eq!(batch["fee"], "-0.81", "{batch}");
    assert_eq!(batch["taxFee"], "-0.08", "{batch}");
    let batch_id = batch["settlementBatchId"].as_str().unwrap().to_owned();
    let day = batch["day"].as_str().unwrap().to_owned();

    let files: Vec<&str> =
        settled["files"].as_array().unwrap().iter().map(|file| file.as_str().unwrap()).collect();
    let folder = format!("v1/settlements/{client_id}/{day}");
    let expected = [
        format!("{folder}/settlementItems_USD_{batch_id}_000.csv"),
        format!("{folder}/settlementSummary_USD_{batch_id}_000.csv"),
        format!("{folder}/transactionItems_{day}_000.csv"),
    ];
    assert_eq!(files, expected.iter().map(String::as_str).collect::<Vec<_>>());
    let reports = Path::new(&data).join("reports");
    let summary = lines(&reports.join(&expected[1]));
    assert_eq!(
        summary[0],
        "settlementBatchId,customerId,PSP,summaryType,settlementTime,count,settlementAmountValue,settlementCurrency,\
         feeAmountValue,feeCurrency,taxFeeAmountValue,taxFeeCurrency"
    );
    let total = summary.iter().find(|line| line.contains(",TOTAL,")).expect("a TOTAL row");
    assert!(total.ends_with(",5,12.11,USD,-0.81,USD,-0.08,USD"), "{total}");
    assert_eq!(summary.last().unwrap(), "<END>");
    let transactions = lines(&reports.join(&expected[2]));
    assert_eq!(transactions.len(), 1 + 5 + 1, "header, five rows, <END>");
    assert!(
        transactions.iter().any(|line| line.contains(",REFUND,") && line.contains(",-2.00,USD")),
        "{transactions:?}"
    );
    assert!(
        transactions.iter().any(|line| line.contains(",CANCEL,") && line.contains(",-3.00,USD")),
        "{transactions:?}"
    );

    // The files, the ledger and the records agree.
    let reconciled = ocpay(&["reconcile", "--data-dir", &data, "--date", &day, "--client-id", &client_id]);
    assert!(reconciled.status.success(), "{}", String::from_utf8_lossy(&reconciled.stdout));
    assert_eq!(json(&reconciled)["discrepancies"], serde_json::json!([]));

    // A file changed by hand is caught; regenerating gives back the very same bytes.
    let details = reports.join(&expected[0]);
    let original = std::fs::read(&details).unwrap();
    std::fs::write(&details, String::from_utf8(original.clone()).unwrap().replacen(",9.39,", ",9.40,", 1))
        .unwrap();
    let tampered = ocpay(&["reconcile", "--data-dir", &data, "--date", &day, "--client-id", &client_id]);
    assert_eq!(tampered.status.code(), Some(1), "{}", String::from_utf8_lossy(&tampered.stdout));
    let found = json(&tampered)["discrepancies"].to_string();
    assert!(found.contains("sum of the settlement details"), "{found}");
    let generated =
        ocpay(&["reports", "generate", "--data-dir", &data, "--client-id", &client_id, "--date", &day]);
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    assert_eq!(std::fs::read(&details).unwrap(), original, "regenerated byte for byte");

    // A merchant's own order list against the transaction details.
    let request_ids: Vec<String> = transactions
        .iter()
        .filter(|line| line.contains(",PAYMENT,"))
        .map(|line| line.split(',').nth(5).unwrap().to_owned())
        .collect();
    assert_eq!(request_ids.len(), 3);
    let orders = dir.path().join("orders.csv");
    let listed = format!(
        "paymentRequestId,amount,currency\n{},10.00,USD\n{},5.00,USD\nnever-paid,1.00,USD\n",
        request_ids[0], request_ids[1]
    );
    std::fs::write(&orders, listed).unwrap();
    let matched = ocpay(&[
        "reconcile",
        "--report",
        reports.join(&expected[2]).to_str().unwrap(),
        "--orders",
        orders.to_str().unwrap(),
    ]);
    assert_eq!(matched.status.code(), Some(1));
    let said = String::from_utf8_lossy(&matched.stdout);
    assert!(said.contains("never-paid") && said.contains(&request_ids[2]), "{said}");

    // The payout moves the settled balance out, once.
    let paid = json(&ocpay(&[
        "settlements",
        "mark-paid",
        "--data-dir",
        &data,
        "--batch-id",
        &batch_id,
        "--reference",
        "T1",
    ]));
    assert_eq!(paid["paidOut"], "12.11", "{paid}");
    let again = ocpay(&["settlements", "mark-paid", "--data-dir", &data, "--batch-id", &batch_id]);
    assert!(!again.status.success());
    let shown = json(&ocpay(&["settlements", "show", "--data-dir", &data, "--batch-id", &batch_id]));
    assert_eq!(
        (&shown["payoutReference"], &shown["ledgerMovement"]),
        (&"T1".into(), &"12.11".into()),
        "{shown}"
    );

    // Nothing is left to settle: a second settlement finds no transaction.
    let second_run = json(&ocpay(&["settle", "--data-dir", &data, "--client-id", &client_id, "--now"]));
    let counts: Vec<&Value> =
        second_run["batches"].as_array().unwrap().iter().map(|batch| &batch["count"]).collect();
    assert!(counts.iter().all(|count| **count == 0), "{second_run}");
}
