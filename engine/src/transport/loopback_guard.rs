//! The socket-level half of loopback-only mode ([`super::WebRtcConfig::loopback_only`]).
//!
//! Filtering remote candidates keeps ICE from *planning* a check to a non-loopback address, but
//! a peer can still be learnt as peer-reflexive from a check that arrives from another local
//! address (a browser's socket on the machine's LAN address sending to our 127.0.0.1), and the
//! STUN answer and later checks would then go to that address. So in loopback-only mode the
//! peer connection runs on [`LoopbackRuntime`]: the crate's default runtime whose UDP sockets
//! **drop every datagram to or from a non-loopback address**. Nothing can leave or enter a
//! session except over 127.0.0.0/8 and ::1, whatever the peer sends.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime,
    Transmit, default_runtime,
};

/// Datagrams dropped by loopback guards in this process (sent or received), for tests.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Datagrams dropped so far by every loopback guard of this process.
pub fn dropped_datagrams() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Whether `ip` is loopback (also as an IPv4-mapped IPv6 address).
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// The default runtime, with loopback-only UDP sockets (and TCP connections).
#[derive(Debug)]
pub(crate) struct LoopbackRuntime {
    inner: Arc<dyn Runtime>,
}

impl LoopbackRuntime {
    pub(crate) fn new() -> Option<Self> {
        default_runtime().map(|inner| Self { inner })
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Runtime for LoopbackRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.inner.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        self.inner.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let inner = self.inner.wrap_udp_socket(socket)?;
        Ok(Arc::new(LoopbackSocket { inner }))
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> BoxFuture<'a, io::Result<Arc<dyn AsyncTcpStream>>> {
        if is_loopback(remote_addr.ip()) {
            self.inner.connect_tcp(remote_addr)
        } else {
            Box::pin(async { Err(refused()) })
        }
    }

    fn resolve_host<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        Box::pin(async move {
            let addrs = self.inner.resolve_host(host).await?;
            Ok(addrs
                .into_iter()
                .filter(|addr| is_loopback(addr.ip()))
                .collect())
        })
    }

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.inner.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.inner.block_on(future);
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.yield_now()
    }

    fn name(&self) -> &'static str {
        "loopback-only"
    }
}

fn refused() -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        "loopback-only: not a loopback address",
    )
}

/// A UDP socket that only talks to loopback addresses.
#[derive(Debug)]
pub(crate) struct LoopbackSocket {
    inner: Arc<dyn AsyncUdpSocket>,
}

impl AsyncUdpSocket for LoopbackSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// A datagram to a non-loopback address is dropped (reported as sent, like a datagram lost
    /// on the way, so the stack carries on with its loopback pairs).
    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        if is_loopback(transmit.destination.ip()) {
            self.inner.poll_send(cx, transmit)
        } else {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            Poll::Ready(Ok(transmit.contents.len()))
        }
    }

    /// Receives one datagram at a time and drops those from non-loopback sources.
    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        if bufs.is_empty() || meta.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            match self.inner.poll_recv(cx, &mut bufs[..1], &mut meta[..1]) {
                Poll::Ready(Ok(n)) if n > 0 && !is_loopback(meta[0].addr.ip()) => {
                    DROPPED.fetch_add(1, Ordering::Relaxed);
                }
                other => return other,
            }
        }
    }

    fn max_gso_segments(&self) -> usize {
        self.inner.max_gso_segments()
    }

    fn max_gro_segments(&self) -> usize {
        self.inner.max_gro_segments()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::task::Waker;

    /// An in-memory socket: queued datagrams to receive, and a record of what was sent.
    #[derive(Debug, Default)]
    struct MemorySocket {
        incoming: Mutex<VecDeque<(SocketAddr, Vec<u8>)>>,
        sent: Mutex<Vec<SocketAddr>>,
    }

    impl AsyncUdpSocket for MemorySocket {
        fn local_addr(&self) -> io::Result<SocketAddr> {
            Ok(SocketAddr::from(([127, 0, 0, 1], 5000)))
        }

        fn poll_send(
            &self,
            _: &mut Context<'_>,
            transmit: &Transmit<'_>,
        ) -> Poll<io::Result<usize>> {
            self.sent.lock().unwrap().push(transmit.destination);
            Poll::Ready(Ok(transmit.contents.len()))
        }

        fn poll_recv(
            &self,
            _: &mut Context<'_>,
            bufs: &mut [IoSliceMut<'_>],
            meta: &mut [RecvMeta],
        ) -> Poll<io::Result<usize>> {
            match self.incoming.lock().unwrap().pop_front() {
                Some((from, data)) => {
                    bufs[0][..data.len()].copy_from_slice(&data);
                    let mut m = RecvMeta::default();
                    m.addr = from;
                    m.len = data.len();
                    m.stride = data.len().max(1);
                    meta[0] = m;
                    Poll::Ready(Ok(1))
                }
                None => Poll::Pending,
            }
        }
    }

    fn transmit(to: SocketAddr, contents: &[u8]) -> Transmit<'_> {
        Transmit {
            destination: to,
            ecn: None,
            contents,
            segment_size: None,
            src_ip: None,
        }
    }

    #[test]
    fn only_loopback_datagrams_pass_either_way() {
        let memory = Arc::new(MemorySocket::default());
        let lan: SocketAddr = "192.0.2.2:40000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:40002".parse().unwrap();
        let v6: SocketAddr = "[::1]:40003".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        memory
            .incoming
            .lock()
            .unwrap()
            .extend([(lan, b"from lan".to_vec()), (local, b"from lo".to_vec())]);
        let guard = LoopbackSocket {
            inner: memory.clone(),
        };
        let mut cx = Context::from_waker(Waker::noop());
        let before = dropped_datagrams();

        for to in [lan, local, mapped, v6, "[fd00::2]:1".parse().unwrap()] {
            assert!(matches!(
                guard.poll_send(&mut cx, &transmit(to, b"check")),
                Poll::Ready(Ok(5))
            ));
        }
        assert_eq!(*memory.sent.lock().unwrap(), vec![local, mapped, v6]);

        let mut storage = [[0u8; 64]; 2];
        let [a, b] = &mut storage;
        let mut bufs = [IoSliceMut::new(a), IoSliceMut::new(b)];
        let mut meta = [RecvMeta::default(); 2];
        let got = guard.poll_recv(&mut cx, &mut bufs, &mut meta);
        assert!(matches!(got, Poll::Ready(Ok(1))), "{got:?}");
        assert_eq!(meta[0].addr, local);
        assert_eq!(&bufs[0][..meta[0].len], b"from lo");
        assert!(guard.poll_recv(&mut cx, &mut bufs, &mut meta).is_pending());
        assert!(dropped_datagrams() >= before + 3);
    }
}
