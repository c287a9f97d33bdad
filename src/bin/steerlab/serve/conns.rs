//! The helper's connections, accepted by hand so that a flood of them cannot take it down or lock a paired page
//! out. Any program on the machine can open connections to 127.0.0.1 without the pairing token, so:
//! - a connection must finish its request head within `--header-timeout` (hyper's timer) and is closed after
//!   `--idle-timeout` with no request in flight;
//! - at most `--max-connections` are open (kept below the open-file limit, which is raised to its hard maximum at
//!   start). A new connection past the cap closes the longest-idle one, so a flood of idle sockets only evicts
//!   itself while a page that sends its request at once is served; connections with a request in flight (a paired
//!   page's running job among them) are never closed for a newcomer, and when all are busy the newcomer is refused;
//! - an accept error (the open-file limit reached all the same, say) closes the longest-idle connection and backs off
//!   briefly: it never ends or panics the server.

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use clap::Args;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::ServiceExt;

#[derive(Args, Clone, Serialize)]
pub struct ConnLimits {
    /// Connections open at once; past this a new one closes the longest-idle one (or is refused when none is idle).
    #[arg(long, default_value_t = 256)]
    pub max_connections: usize,
    /// Seconds a connection has to send a whole request head.
    #[arg(long, default_value_t = 10)]
    pub header_timeout: u64,
    /// Seconds a connection may stay open with no request in flight.
    #[arg(long, default_value_t = 60)]
    pub idle_timeout: u64,
}

/// One open connection: how many of its requests are in flight, since when it has been idle, and how to close it.
struct Conn {
    busy: AtomicUsize,
    /// Milliseconds since the server started, when it last became idle.
    idle_since: AtomicU64,
    close: Notify,
}

#[derive(Default)]
struct Table {
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    next: AtomicU64,
}

impl Table {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        // A poisoned table is still a valid table: every change to it is one insert or remove.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes the connection idle the longest (none if every one has a request in flight); whether one was.
    fn evict_oldest_idle(&self) -> bool {
        let mut open = self.lock();
        let oldest = open
            .iter()
            .filter(|(_, c)| c.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|(id, c)| (c.idle_since.load(Ordering::Acquire), **id))
            .map(|(id, _)| *id);
        match oldest.and_then(|id| open.remove(&id)) {
            Some(conn) => {
                conn.close.notify_one();
                true
            }
            None => false,
        }
    }

    /// Closes every connection idle for longer than `limit`.
    fn close_idle(&self, now_ms: u64, limit: Duration) {
        let limit = limit.as_millis() as u64;
        self.lock().retain(|_, c| {
            let stale = c.busy.load(Ordering::Acquire) == 0
                && now_ms.saturating_sub(c.idle_since.load(Ordering::Acquire)) > limit;
            if stale {
                c.close.notify_one();
            }
            !stale
        });
    }
}

/// Counts a request in flight on its connection until the response body is done or dropped.
struct InFlight {
    conn: Arc<Conn>,
    epoch: Instant,
}

impl InFlight {
    fn new(conn: Arc<Conn>, epoch: Instant) -> Self {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        Self { conn, epoch }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.conn.idle_since.store(self.epoch.elapsed().as_millis() as u64, Ordering::Release);
        self.conn.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in flight while it streams (a job's NDJSON lines).
struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Raises the soft open-file limit to the hard one, and returns how many connections fit under it with room
/// left for model files and the runtime.
pub fn connection_room(asked: usize) -> usize {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit/setrlimit only read and write the struct passed.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
                if lim.rlim_cur < lim.rlim_max {
                    let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                        lim.rlim_cur = lim.rlim_max;
                    }
                }
                let room = (lim.rlim_cur as usize).saturating_sub(64).max(8);
                return asked.min(room);
            }
        }
    }
    asked
}

/// Serves `router` on `listener` under `limits` until the process ends.
pub async fn serve(listener: TcpListener, router: Router, limits: ConnLimits) {
    let table = Arc::new(Table::default());
    let epoch = Instant::now();
    let idle = Duration::from_secs(limits.idle_timeout.max(1));
    {
        let table = table.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                table.close_idle(epoch.elapsed().as_millis() as u64, idle);
            }
        });
    }
    let mut last_warning: Option<Instant> = None;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    eprintln!("note: cannot accept a connection ({e}); closing the longest-idle one");
                    last_warning = Some(Instant::now());
                }
                table.evict_oldest_idle();
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        if table.lock().len() >= limits.max_connections && !table.evict_oldest_idle() {
            drop(stream); // every connection is busy: refuse this one
            continue;
        }
        let id = table.next.fetch_add(1, Ordering::Relaxed);
        let now = epoch.elapsed().as_millis() as u64;
        let conn = Arc::new(Conn { busy: AtomicUsize::new(0), idle_since: AtomicU64::new(now), close: Notify::new() });
        table.lock().insert(id, conn.clone());
        let (table, router) = (table.clone(), router.clone());
        let header_timeout = Duration::from_secs(limits.header_timeout.max(1));
        tokio::spawn(async move {
            let service = {
                let conn = conn.clone();
                hyper::service::service_fn(move |req: Request<Incoming>| {
                    let in_flight = InFlight::new(conn.clone(), epoch);
                    let answer = router.clone().oneshot(req);
                    async move {
                        let resp = answer.await?;
                        Ok::<_, std::convert::Infallible>(
                            resp.map(|body| Body::new(Tracked { body, _in_flight: in_flight })),
                        )
                    }
                })
            };
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new()).header_read_timeout(header_timeout);
            let served = http.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = served => {}
                _ = conn.close.notified() => {}
            }
            table.lock().remove(&id);
        });
    }
}
