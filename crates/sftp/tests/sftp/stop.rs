//! Stopping the server ends the sessions already open: a logged-in client running the SFTP
//! subsystem is told the server is stopping, and a connection that never said anything is
//! closed, so that `ocpay serve` shuts down cleanly.

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt as _;

use super::PASSWORD;
use super::inprocess::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_server_disconnects_the_sessions_open() {
    let mut server = Server::start(|_| {}).await;
    let login = server.login("C1", PASSWORD).await.expect("the right password");
    let mut channel = login.handle.channel_open_session().await.unwrap();
    channel.request_subsystem(true, "sftp").await.unwrap();
    let mut silent = tokio::net::TcpStream::connect(server.address()).await.unwrap();
    // The server has taken the silent connection once it sent its identification.
    let mut banner = Vec::new();
    let identified = tokio::time::timeout(Duration::from_secs(5), async {
        while !banner.ends_with(b"\r\n") {
            let mut byte = [0u8; 1];
            if silent.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            banner.push(byte[0]);
        }
    })
    .await;
    assert!(identified.is_ok(), "the server identifies itself");
    assert!(banner.starts_with(b"SSH-2.0-ocpay_sftp"), "{:?}", String::from_utf8_lossy(&banner));

    let started = Instant::now();
    server.stop().await;
    let stopped = started.elapsed();

    let closed =
        tokio::time::timeout(Duration::from_secs(5), async { while channel.wait().await.is_some() {} }).await;
    assert!(closed.is_ok(), "the SFTP channel is closed");
    assert_eq!(login.disconnect.lock().unwrap().as_deref(), Some("the server is stopping"));
    assert!(stopped < Duration::from_secs(2), "a client that answers ends the session at once: {stopped:?}");

    // The silent connection, which never answered the identification, is closed.
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the silent connection is closed");
}
