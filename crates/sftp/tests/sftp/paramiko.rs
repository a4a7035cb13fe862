//! The server from Python's paramiko (installed into the same virtual environment as the
//! official Python SDK, whose interpreter `OCPAY_PYTHON` names): key and password logins, a
//! listing, a download, and refused writes.

use super::*;

const SCRIPT: &str = r#"
import sys, paramiko
port, key_path, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
transport = paramiko.Transport(("127.0.0.1", port))
transport.connect(username="C1", pkey=paramiko.Ed25519Key.from_private_key_file(key_path))
sftp = paramiko.SFTPClient.from_transport(transport)
print("root", sorted(sftp.listdir("/v1/settlements")))
with sftp.open("/v1/settlements/C1/20300101/C1-settlement.csv") as f:
    print("file", f.read().decode().replace("\n", "|"))
for name, attempt in [
    ("put", lambda: sftp.open("/v1/settlements/C1/new.csv", "w")),
    ("remove", lambda: sftp.remove("/v1/settlements/C1/20300101/C1-settlement.csv")),
    ("mkdir", lambda: sftp.mkdir("/v1/settlements/C1/x")),
    ("chmod", lambda: sftp.chmod("/v1/settlements/C1/20300101/C1-settlement.csv", 0o777)),
    ("other", lambda: sftp.open("/v1/settlements/C2/20300101/C2-settlement.csv")),
]:
    try:
        attempt()
        print("allowed", name)
    except (IOError, OSError):
        print("refused", name)
transport.close()
transport = paramiko.Transport(("127.0.0.1", port))
transport.connect(username="C1", password=password)
print("password", paramiko.SFTPClient.from_transport(transport).listdir("/v1/settlements/C1"))
transport.close()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the official Python SDK: scripts/test runs it"]
async fn paramiko_logs_in_lists_and_reads_only_python_sdk() {
    let python = std::env::var("OCPAY_PYTHON")
        .expect("OCPAY_PYTHON must name a Python with paramiko (scripts/test sets it up)");
    let env = Env::new().await;
    let output = tokio::process::Command::new(python)
        .args(["-c", SCRIPT, &env.port().to_string()])
        .arg(env.key("C1"))
        .arg(PASSWORD)
        .output()
        .await
        .unwrap();
    let printed = text(&output);
    assert!(output.status.success(), "{printed}");
    assert!(printed.contains("root ['C1']"), "{printed}");
    assert!(printed.contains("file batch,amount|C1-1,100|"), "{printed}");
    for name in ["put", "remove", "mkdir", "chmod", "other"] {
        assert!(printed.contains(&format!("refused {name}")), "{name}: {printed}");
    }
    assert!(printed.contains("password ['20300101']"), "{printed}");
}
