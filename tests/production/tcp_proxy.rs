//! A TCP proxy in front of the S3 server that can slow every connection,
//! drop some, or stop serving altogether, as a flaky network or a crashed
//! S3 would. Bytes pass through untouched, so S3 signatures stay valid.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Clone, Default)]
pub struct TcpFaults {
    /// Wait this long before connecting each new connection upstream.
    pub delay: Duration,
    /// Close every n-th new connection at once.
    pub drop_every: Option<u64>,
}

pub struct TcpProxy {
    pub endpoint: String,
    pub connections: Arc<AtomicU64>,
    pub dropped: Arc<AtomicU64>,
    stopped: Arc<AtomicBool>,
    stop: watch::Sender<bool>,
}

impl TcpProxy {
    pub async fn start(upstream: &str, faults: TcpFaults) -> TcpProxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let stopped = Arc::new(AtomicBool::new(false));
        let (stop, stop_signal) = watch::channel(false);
        let (counter, drops, is_stopped) = (connections.clone(), dropped.clone(), stopped.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
                if is_stopped.load(Ordering::Relaxed)
                    || faults
                        .drop_every
                        .is_some_and(|every| n.is_multiple_of(every))
                {
                    drops.fetch_add(1, Ordering::Relaxed);
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let faults = faults.clone();
                let mut stop_signal = stop_signal.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(faults.delay).await;
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = stop_signal.wait_for(|stopped| *stopped) => {}
                    }
                });
            }
        });
        TcpProxy {
            endpoint,
            connections,
            dropped,
            stopped,
            stop,
        }
    }

    /// From now on, every connection is cut, open ones included.
    pub fn stop_serving(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        let _ = self.stop.send(true);
    }
}
