//! The chaos proxy of `tandem soak --faults`: a TCP proxy on loopback between the device and the
//! edge that can break the link on command.
//!
//! The device is pointed at the proxy; each connection it opens is relayed to the edge's address
//! (set with [`ChaosProxy::set_upstream`]; a connection that arrives before it is set waits for
//! it). Two tasks per connection relay the two directions independently. On command:
//! - [`ChaosProxy::cut`]: the next device → edge chunk read is forwarded only up to its middle,
//!   then both sockets are closed with `SO_LINGER 0`, i.e. reset. The proxy does not parse frames:
//!   a read chunk starts and ends at arbitrary offsets of the frame stream, so the stream ends
//!   inside a frame.
//! - [`ChaosProxy::corrupt`]: the middle byte of the next device → edge chunk is inverted.
//! - [`ChaosProxy::set_collapse`]: while on, device → edge is throttled to
//!   [`COLLAPSE_BYTES_PER_S`](crate::faults::COLLAPSE_BYTES_PER_S) (1 KiB pieces, paced).
//! - [`ChaosProxy::set_slow`]: while on, each edge → device chunk waits
//!   [`SLOW_DELAY`](crate::faults::SLOW_DELAY) before it is forwarded.
//!
//! A cut or a corrupt byte is a one-shot command for the connection open now (the device holds
//! one); with none open, it waits for the next one. Each one that took effect is reported on
//! [`ChaosProxy::injected`] with the instant it happened.
//!
//! Queues: commands, 8 (the soak sends one per fault and waits for it; full = refused with an
//! error); per connection, 4; injections reported, 16 (the soak reads each as it comes; full =
//! the report is dropped and the soak records the fault as not injected — never seen in practice,
//! the soak awaits each report).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::faults::{COLLAPSE_BYTES_PER_S, FaultKind, SLOW_DELAY};

/// Bytes read at a time in each direction.
const CHUNK: usize = 16 * 1024;
/// Piece written at a time while throttled.
const PIECE: usize = 1024;

/// A one-shot fault for the open connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OneShot {
    Cut,
    Corrupt,
}

/// The windowed faults in force.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Window {
    collapse: bool,
    slow: bool,
}

/// A fault that took effect.
#[derive(Clone, Copy, Debug)]
pub struct Injected {
    /// `Cut` or `Corrupt`.
    pub kind: FaultKind,
    /// When the reset was sent or the byte flipped.
    pub at: Instant,
}

/// The running proxy; dropping it stops accepting (open connections finish on their own).
pub struct ChaosProxy {
    addr: SocketAddr,
    commands: mpsc::Sender<OneShot>,
    upstream: watch::Sender<Option<SocketAddr>>,
    window: watch::Sender<Window>,
    injected: mpsc::Receiver<Injected>,
    accept: JoinHandle<()>,
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl ChaosProxy {
    /// Listen on an ephemeral loopback port.
    pub async fn start() -> std::io::Result<ChaosProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (commands, cmd_rx) = mpsc::channel(8);
        let (upstream, up_rx) = watch::channel(None);
        let (window, win_rx) = watch::channel(Window::default());
        let (inj_tx, injected) = mpsc::channel(16);
        let accept = tokio::spawn(accept_loop(listener, cmd_rx, up_rx, win_rx, inj_tx));
        Ok(ChaosProxy { addr, commands, upstream, window, injected, accept })
    }

    /// Where the device should connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Relay new connections to `edge`.
    pub fn set_upstream(&self, edge: SocketAddr) {
        self.upstream.send_replace(Some(edge));
    }

    /// Reset the open connection in the middle of the next device → edge chunk.
    pub fn cut(&self) -> anyhow::Result<()> {
        self.commands.try_send(OneShot::Cut).map_err(|e| anyhow::anyhow!("chaos proxy: cut not queued: {e}"))
    }

    /// Invert the middle byte of the next device → edge chunk.
    pub fn corrupt(&self) -> anyhow::Result<()> {
        self.commands.try_send(OneShot::Corrupt).map_err(|e| anyhow::anyhow!("chaos proxy: corrupt not queued: {e}"))
    }

    /// Throttle device → edge hard (on) or not (off).
    pub fn set_collapse(&self, on: bool) {
        self.window.send_modify(|w| w.collapse = on);
    }

    /// Delay edge → device (on) or not (off).
    pub fn set_slow(&self, on: bool) {
        self.window.send_modify(|w| w.slow = on);
    }

    /// The next cut or corrupt byte that took effect (cancel-safe).
    pub async fn injected(&mut self) -> Option<Injected> {
        self.injected.recv().await
    }
}

async fn accept_loop(
    listener: TcpListener,
    mut commands: mpsc::Receiver<OneShot>,
    upstream: watch::Receiver<Option<SocketAddr>>,
    window: watch::Receiver<Window>,
    injected: mpsc::Sender<Injected>,
) {
    // The newest connection's command queue, and commands that found no open connection. At
    // most as many pending as the command queue holds: the soak waits for each injection.
    let mut live: Option<mpsc::Sender<OneShot>> = None;
    let mut pending: VecDeque<OneShot> = VecDeque::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((device, _)) = accepted else { continue };
                let (tx, rx) = mpsc::channel(4);
                while let Some(c) = pending.pop_front() {
                    if tx.try_send(c).is_err() {
                        pending.push_front(c);
                        break;
                    }
                }
                live = Some(tx);
                tokio::spawn(relay(device, upstream.clone(), window.clone(), rx, injected.clone()));
            }
            cmd = commands.recv() => {
                let Some(cmd) = cmd else { return };
                let refused = match &live {
                    Some(tx) => tx.try_send(cmd).err().map(|e| match e {
                        mpsc::error::TrySendError::Full(c) | mpsc::error::TrySendError::Closed(c) => c,
                    }),
                    None => Some(cmd),
                };
                if let Some(c) = refused {
                    pending.push_back(c);
                }
            }
        }
    }
}

/// Relay one device connection to the edge until either side ends or a cut.
async fn relay(
    device: TcpStream,
    mut upstream: watch::Receiver<Option<SocketAddr>>,
    window: watch::Receiver<Window>,
    commands: mpsc::Receiver<OneShot>,
    injected: mpsc::Sender<Injected>,
) {
    let edge = match upstream.wait_for(Option::is_some).await.map(|a| *a) {
        Ok(Some(addr)) => addr,
        _ => return,
    };
    // The edge is down (killed, restarting): closing the device's connection is what a dead
    // edge behind a live network does after the SYN is answered; the device reconnects.
    let Ok(edge) = TcpStream::connect(edge).await else { return };
    for s in [&device, &edge] {
        let _ = s.set_nodelay(true);
    }
    let (device_rx, device_tx) = device.into_split();
    let (edge_rx, edge_tx) = edge.into_split();
    let cut = CancellationToken::new();
    let ended = CancellationToken::new();
    let up =
        tokio::spawn(upstream_half(device_rx, edge_tx, window.clone(), commands, injected, cut.clone(), ended.clone()));
    downstream_half(edge_rx, device_tx, window, cut, ended.clone()).await;
    ended.cancel();
    let _ = up.await;
}

/// Device → edge: cuts, corrupt bytes, the collapse.
async fn upstream_half(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    window: watch::Receiver<Window>,
    mut commands: mpsc::Receiver<OneShot>,
    injected: mpsc::Sender<Injected>,
    cut: CancellationToken,
    ended: CancellationToken,
) {
    let mut buf = vec![0u8; CHUNK];
    let mut armed: Option<OneShot> = None;
    let mut commands_open = true;
    loop {
        let n = tokio::select! {
            // Biased: a command queued before bytes arrive arms the very next read (unbiased,
            // select could pick the read first, and the fault then took effect a chunk late).
            biased;
            _ = cut.cancelled() => break,
            _ = ended.cancelled() => return,
            c = commands.recv(), if armed.is_none() && commands_open => {
                match c {
                    Some(c) => armed = Some(c),
                    None => commands_open = false,
                }
                continue;
            }
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => n,
            },
        };
        match armed.take() {
            Some(OneShot::Cut) if n >= 2 => {
                let _ = to.write_all(&buf[..n / 2]).await;
                let _ = injected.try_send(Injected { kind: FaultKind::Cut, at: Instant::now() });
                cut.cancel();
                break;
            }
            Some(OneShot::Corrupt) => {
                buf[n / 2] ^= 0xFF;
                let _ = injected.try_send(Injected { kind: FaultKind::Corrupt, at: Instant::now() });
            }
            other => armed = other,
        }
        // During a collapse, paced piece by piece; the rest of a chunk goes at full speed as
        // soon as the collapse ends.
        let mut rest = &buf[..n];
        let mut ok = true;
        while ok && !rest.is_empty() {
            if window.borrow().collapse {
                let (piece, tail) = rest.split_at(rest.len().min(PIECE));
                ok = to.write_all(piece).await.is_ok();
                rest = tail;
                // Pacing, not synchronisation: the link's rate during a collapse.
                tokio::time::sleep(Duration::from_secs_f64(piece.len() as f64 / COLLAPSE_BYTES_PER_S as f64)).await;
            } else {
                ok = to.write_all(rest).await.is_ok();
                rest = &[];
            }
        }
        if !ok {
            return;
        }
    }
    // Cut: reset, do not close politely.
    let _ = to.as_ref().set_zero_linger();
}

/// Edge → device: the slow edge.
async fn downstream_half(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    window: watch::Receiver<Window>,
    cut: CancellationToken,
    ended: CancellationToken,
) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = tokio::select! {
            _ = cut.cancelled() => break,
            _ = ended.cancelled() => return,
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => n,
            },
        };
        if window.borrow().slow {
            tokio::select! {
                _ = cut.cancelled() => break,
                // The edge's extra latency while slow.
                _ = tokio::time::sleep(SLOW_DELAY) => {}
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
    let _ = to.as_ref().set_zero_linger();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream on loopback that echoes everything back; its address.
    async fn spawn_echo() -> SocketAddr {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        echo_addr
    }

    /// An upstream that echoes everything back, and a client through the proxy.
    async fn echo_through_proxy() -> (ChaosProxy, TcpStream) {
        let echo_addr = spawn_echo().await;
        let proxy = ChaosProxy::start().await.unwrap();
        let client = TcpStream::connect(proxy.addr()).await.unwrap();
        // Set after the connection arrived: the relay waits for it.
        proxy.set_upstream(echo_addr);
        (proxy, client)
    }

    #[tokio::test]
    async fn relays_both_ways_and_flips_one_byte_on_command() {
        let (mut proxy, mut client) = echo_through_proxy().await;
        client.write_all(b"hello").await.unwrap();
        let mut got = [0u8; 5];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");

        proxy.corrupt().unwrap();
        // The command reaches the relay before the next chunk: wait for the write to be answered
        // rather than guessing — send until the echo differs (the first chunk after arming).
        let mut flipped = None;
        for _ in 0..100 {
            client.write_all(b"abcd").await.unwrap();
            let mut got = [0u8; 4];
            client.read_exact(&mut got).await.unwrap();
            if &got != b"abcd" {
                flipped = Some(got);
                break;
            }
        }
        assert_eq!(flipped, Some([b'a', b'b', b'c' ^ 0xFF, b'd']), "the middle byte inverted, once");
        let inj = proxy.injected().await.unwrap();
        assert_eq!(inj.kind, FaultKind::Corrupt);
        client.write_all(b"wxyz").await.unwrap();
        let mut got = [0u8; 4];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"wxyz", "one byte only");
    }

    #[tokio::test]
    async fn a_cut_forwards_half_a_chunk_then_resets() {
        let (mut proxy, mut client) = echo_through_proxy().await;
        client.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        client.read_exact(&mut got).await.unwrap();
        proxy.cut().unwrap();
        let inj = loop {
            // Keep sending until the armed cut fires on a chunk; the reset ends the loop.
            if client.write_all(b"0123456789").await.is_err() {
                break proxy.injected().await.unwrap();
            }
            let mut buf = [0u8; 64];
            match client.read(&mut buf).await {
                Ok(0) | Err(_) => break proxy.injected().await.unwrap(),
                Ok(_) => {}
            }
        };
        assert_eq!(inj.kind, FaultKind::Cut);
        // The connection is gone: reading ends (reset or EOF), never more data.
        let mut buf = [0u8; 64];
        let mut tail = Vec::new();
        loop {
            match client.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => tail.extend_from_slice(&buf[..n]),
            }
        }
        assert!(tail.len() <= 5, "at most the half chunk echoed after the cut: {tail:?}");
        // A new connection is relayed again.
        let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
        again.write_all(b"back").await.unwrap();
        let mut got = [0u8; 4];
        again.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"back");
    }

    #[tokio::test]
    async fn a_collapse_and_a_slow_edge_delay_bytes_but_lose_or_reorder_none() {
        let (proxy, mut client) = echo_through_proxy().await;
        let data: Vec<u8> = (0..6000u32).map(|i| (i * 7 % 251) as u8).collect();
        proxy.set_collapse(true);
        proxy.set_slow(true);
        client.write_all(&data).await.unwrap();
        let mut got = vec![0u8; data.len()];
        let half = data.len() / 2;
        client.read_exact(&mut got[..half]).await.unwrap();
        // Off in the middle: the rest of a paced chunk goes at full speed, still in order.
        proxy.set_collapse(false);
        proxy.set_slow(false);
        client.read_exact(&mut got[half..]).await.unwrap();
        assert!(got == data, "the relayed bytes differ");
    }

    #[tokio::test]
    async fn a_command_with_no_connection_waits_for_the_next_one() {
        let echo_addr = spawn_echo().await;
        let mut proxy = ChaosProxy::start().await.unwrap();
        proxy.set_upstream(echo_addr);
        proxy.corrupt().unwrap();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        client.write_all(b"xyz").await.unwrap();
        let mut got = [0u8; 3];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [b'x', b'y' ^ 0xFF, b'z']);
        assert_eq!(proxy.injected().await.unwrap().kind, FaultKind::Corrupt);
    }
}
