//! A small threaded HTTP/1.1 server on 127.0.0.1 for fetch tests: it serves
//! bytes (with `Range` and `If-Range`), redirects, fails, cuts connections and
//! stalls on demand, and records every request it gets.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How the server answers one path.
#[derive(Clone, Debug)]
pub enum Route {
    /// 200 with the bytes (206 for a satisfiable `Range`), ETag `"v1"`.
    Body(Vec<u8>),
    /// 302 to another location (a path on this server or a full URL).
    Redirect(String),
    /// This status with an empty body.
    Status(u16),
    /// The first request gets headers for the whole body but only `after`
    /// bytes, then the connection is cut; later requests are served like
    /// [`Route::Body`], or always in full with 200 when `ignore_range`.
    CutOnce { body: Vec<u8>, after: usize, ignore_range: bool },
    /// Sends `after` bytes, then goes silent for `stall` before the rest.
    Stall { body: Vec<u8>, after: usize, stall: Duration },
    /// Answers `times` requests with `status`, then serves the body.
    FailFirst { status: u16, times: usize, body: Vec<u8> },
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    log: Vec<Request>,
}

/// The server; it stops when dropped.
pub struct TestServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl TestServer {
    pub fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let st = st.clone();
                    thread::spawn(move || serve(conn, &st));
                }
            }
        });
        TestServer { addr, state, stop }
    }

    pub fn route(&self, path: &str, route: Route) {
        self.state.lock().unwrap().routes.insert(path.to_owned(), route);
    }

    /// `http://127.0.0.1:PORT<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().log.clone()
    }

    /// The requests for one path.
    pub fn requests_for(&self, path: &str) -> Vec<Request> {
        self.requests().into_iter().filter(|r| r.path == path).collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn read_request(conn: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    Some(Request { path, headers })
}

fn serve(mut conn: TcpStream, state: &Mutex<State>) {
    let Some(req) = read_request(&conn) else { return };
    let (route, seen) = {
        let mut st = state.lock().unwrap();
        let seen = st.log.iter().filter(|r| r.path == req.path).count();
        st.log.push(req.clone());
        (st.routes.get(&req.path).cloned(), seen)
    };
    let _ = match route {
        None => head(&mut conn, 404, &[], 0),
        Some(Route::Status(s)) => head(&mut conn, s, &[], 0),
        Some(Route::Redirect(to)) => head(&mut conn, 302, &[("Location", &to)], 0),
        Some(Route::Body(body)) => body_honouring_range(&mut conn, &req, &body),
        Some(Route::CutOnce { body, after, .. }) if seen == 0 => {
            head(&mut conn, 200, &[("ETag", "\"v1\"")], body.len()).and_then(|()| conn.write_all(&body[..after]))
        }
        Some(Route::CutOnce { body, ignore_range: true, .. }) => {
            head(&mut conn, 200, &[("ETag", "\"v1\"")], body.len()).and_then(|()| conn.write_all(&body))
        }
        Some(Route::CutOnce { body, .. }) => body_honouring_range(&mut conn, &req, &body),
        Some(Route::Stall { body, after, stall }) => head(&mut conn, 200, &[], body.len()).and_then(|()| {
            conn.write_all(&body[..after])?;
            conn.flush()?;
            thread::sleep(stall);
            conn.write_all(&body[after..])
        }),
        Some(Route::FailFirst { status, times, .. }) if seen < times => head(&mut conn, status, &[], 0),
        Some(Route::FailFirst { body, .. }) => body_honouring_range(&mut conn, &req, &body),
    };
    let _ = conn.shutdown(std::net::Shutdown::Both);
}

fn head(conn: &mut TcpStream, status: u16, extra: &[(&str, &str)], len: usize) -> std::io::Result<()> {
    let mut text = format!("HTTP/1.1 {status} X\r\nContent-Length: {len}\r\nConnection: close\r\n");
    for (k, v) in extra {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str("\r\n");
    conn.write_all(text.as_bytes())
}

fn body_honouring_range(conn: &mut TcpStream, req: &Request, body: &[u8]) -> std::io::Result<()> {
    let start = req
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|_| matches!(req.header("if-range"), None | Some("\"v1\"")));
    match start {
        Some(s) if s < body.len() => {
            let range = format!("bytes {s}-{}/{}", body.len() - 1, body.len());
            head(conn, 206, &[("ETag", "\"v1\""), ("Content-Range", &range)], body.len() - s)?;
            conn.write_all(&body[s..])
        }
        _ => {
            head(conn, 200, &[("ETag", "\"v1\"")], body.len())?;
            conn.write_all(body)
        }
    }
}
