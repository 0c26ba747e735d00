//! `serve ws-fanout`: a measuring stick, not a server to use. The least any WebSocket
//! broadcast server can do per delivery: every connection is in one room (the sender
//! included), and each message is framed once and written straight into every member's
//! socket by the task that read it: one `send` per member, no queue, no task woken. Only a
//! member whose socket is full gets its bytes kept (bounded) and flushed by its own task.
//! Single-threaded, no locks. It checks nothing a real server must (origins, limits, UTF-8,
//! control frames beyond close), so it is the floor for the broadcast workloads, with the
//! load generator and the kernel.

use std::cell::RefCell;
use std::rc::Rc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Bytes kept for a member whose socket is full before it is dropped.
const MAX_PENDING: usize = 1 << 20;

struct Member {
    stream: TcpStream,
    /// Bytes its socket could not take yet.
    pending: RefCell<Vec<u8>>,
    /// Rung when `pending` fills, or when the member is dropped.
    wake: Notify,
    dropped: std::cell::Cell<bool>,
}

type Room = Rc<RefCell<Vec<Rc<Member>>>>;

pub async fn run(listener: TcpListener) -> anyhow::Result<()> {
    let room: Room = Rc::default();
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            loop {
                let (stream, _) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                tokio::task::spawn_local(member(stream, room.clone()));
            }
        })
        .await
}

async fn member(mut stream: TcpStream, room: Room) {
    if handshake(&mut stream).await.is_none() {
        return;
    }
    let me = Rc::new(Member {
        stream,
        pending: RefCell::default(),
        wake: Notify::new(),
        dropped: Default::default(),
    });
    room.borrow_mut().push(me.clone());
    let mut buf = vec![0u8; 64 * 1024];
    let mut filled = 0;
    let mut frame = Vec::new();
    while !me.dropped.get() {
        let has_pending = !me.pending.borrow().is_empty();
        tokio::select! {
            ready = me.stream.readable() => {
                if ready.is_err() {
                    break;
                }
                match me.stream.try_read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(_) => break,
                }
                let mut at = 0;
                while let Some((opcode, start, len)) = parse(&mut buf[at..filled]) {
                    if opcode == 8 {
                        me.dropped.set(true);
                        break;
                    }
                    if opcode == 1 || opcode == 2 {
                        frame.clear();
                        header(&mut frame, opcode, len);
                        frame.extend_from_slice(&buf[at + start..at + start + len]);
                        publish(&room, &frame);
                    }
                    at += start + len;
                }
                buf.copy_within(at..filled, 0);
                filled -= at;
                if filled == buf.len() {
                    buf.resize(buf.len() * 2, 0);
                }
            }
            ready = me.stream.writable(), if has_pending => {
                if ready.is_err() {
                    break;
                }
                let mut pending = me.pending.borrow_mut();
                match me.stream.try_write(&pending) {
                    Ok(n) => drop(pending.drain(..n)),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => break,
                }
            }
            _ = me.wake.notified() => {}
        }
    }
    room.borrow_mut().retain(|m| !Rc::ptr_eq(m, &me));
}

/// Writes `frame` into every member's socket now; keeps it for members that are full.
fn publish(room: &Room, frame: &[u8]) {
    for m in room.borrow().iter() {
        let mut pending = m.pending.borrow_mut();
        let sent = match pending.is_empty() {
            true => match m.stream.try_write(frame) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
                Err(_) => {
                    m.dropped.set(true);
                    m.wake.notify_one();
                    continue;
                }
            },
            false => 0,
        };
        if sent < frame.len() {
            pending.extend_from_slice(&frame[sent..]);
            if pending.len() > MAX_PENDING {
                m.dropped.set(true);
            }
            m.wake.notify_one();
        }
    }
}

/// Reads the upgrade request and answers 101; `None` if it is not one.
pub async fn handshake(stream: &mut TcpStream) -> Option<()> {
    let mut request = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || request.len() > 8192 {
            return None;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let text = std::str::from_utf8(&request).ok()?;
    let key = text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim())
    })?;
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    stream.write_all(response.as_bytes()).await.ok()
}

/// Parses (and unmasks in place) the client frame at the start of `buf`: opcode, payload
/// start and length; `None` until it is complete.
pub fn parse(buf: &mut [u8]) -> Option<(u8, usize, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0f;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => (u64::from_be_bytes(buf[2..10].try_into().ok()?) as usize, 10),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    let mask = if masked {
        let mask: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(mask)
    } else {
        None
    };
    let payload = buf.get_mut(at..at + len)?;
    if let Some(mask) = mask {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i & 3];
        }
    }
    Some((opcode, at, len))
}

/// A server frame header: FIN, `opcode`, no mask.
pub fn header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    out.push(0x80 | opcode);
    match len {
        0..=125 => out.push(len as u8),
        126..=65535 => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
}
