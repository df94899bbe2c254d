//! A network link a test can break: a TCP proxy on a free loopback port in front of a
//! server. Its state decides what a connection gets: `Up` carries both ways; `Down` closes
//! every open connection at once (mid-request or mid-answer) and every new one as it
//! arrives; `LoseAnswers` carries requests to the server but closes the connection when the
//! server's answer starts, so the server did the work and the client never hears of it.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Up,
    Down,
    LoseAnswers,
}

pub struct LinkProxy {
    /// `http://127.0.0.1:port`.
    pub url: String,
    state: Arc<watch::Sender<Link>>,
    task: JoinHandle<()>,
}

impl LinkProxy {
    /// A proxy to `target`, up.
    pub async fn start(target: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(watch::Sender::new(Link::Up));
        let task = tokio::spawn(accept(listener, target, state.clone()));
        Ok(Self { url, state, task })
    }

    pub fn set(&self, link: Link) {
        self.state.send_replace(link);
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, target: SocketAddr, state: Arc<watch::Sender<Link>>) {
    while let Ok((client, _)) = listener.accept().await {
        let link = state.subscribe();
        if *link.borrow() == Link::Down {
            drop(client);
            continue;
        }
        tokio::spawn(async move {
            if let Ok(server) = TcpStream::connect(target).await {
                carry(client, server, link).await;
            }
        });
    }
}

/// Carries one connection until either side closes or the link breaks it.
async fn carry(client: TcpStream, server: TcpStream, mut link: watch::Receiver<Link>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let (mut up, mut down) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    loop {
        tokio::select! {
            read = client_rx.read(&mut up) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => if server_tx.write_all(&up[..n]).await.is_err() { return },
            },
            read = server_rx.read(&mut down) => match read {
                Ok(0) | Err(_) => return,
                // The answer is lost with the connection.
                Ok(_) if *link.borrow() == Link::LoseAnswers => return,
                Ok(n) => if client_tx.write_all(&down[..n]).await.is_err() { return },
            },
            changed = link.changed() => {
                if changed.is_err() || *link.borrow_and_update() == Link::Down {
                    return;
                }
            }
        }
    }
}
