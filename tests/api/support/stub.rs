//! A raw HTTP/1.1 stub of the upstream serving canned answers byte for byte (the
//! ground-truth examples, or bodies a test writes), so the client's decoding is
//! tested against the reference's own bodies, and behaviours the simulator would
//! hide (an answer that comes late after the workflow started, a workflow that
//! shows only after a 409) can be staged. It records every request body.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// `tests/fixtures/upstream-examples.json`: the team's ground truth, verbatim.
pub(crate) const UPSTREAM_EXAMPLES: &str = include_str!("../../fixtures/upstream-examples.json");
/// The account the stub serves.
pub(crate) const STUB_ACCOUNT: &str = "023e105f4ecef8ad9ca31a8372d0c353";

/// One canned answer: status, headers and the exact body bytes.
#[derive(Clone, Debug)]
pub(crate) struct Canned {
    /// HTTP status.
    pub status: u16,
    /// Headers besides `content-length` (`content-type` defaults to JSON).
    pub headers: Vec<(String, String)>,
    /// The body, byte for byte.
    pub body: Vec<u8>,
    /// How long the stub waits before answering (after its `reveals` took effect).
    pub delay: Duration,
    /// Routes whose answers change the moment this answer is chosen: the
    /// upstream acted (a workflow now shows) whatever becomes of the answer.
    pub reveals: Vec<(String, String, Vec<Canned>)>,
}

impl Canned {
    /// The fixture entry `name`, exactly as recorded.
    pub(crate) fn example(name: &str) -> Self {
        let examples: Value = serde_json::from_str(UPSTREAM_EXAMPLES).unwrap();
        let entry = &examples[name];
        assert!(entry.is_object(), "no example {name}");
        let headers = entry["headers"]
            .as_object()
            .map(|headers| {
                headers
                    .iter()
                    .map(|(name, value)| (name.clone(), value.as_str().unwrap().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            status: entry["http_status"].as_u64().unwrap() as u16,
            headers,
            body: serde_json::to_vec(&entry["body"]).unwrap(),
            delay: Duration::ZERO,
            reveals: Vec::new(),
        }
    }

    /// This answer, sent only after `delay`.
    pub(crate) fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// This answer, which first makes `domain`'s registration-status answer `answers`.
    pub(crate) fn revealing(mut self, domain: &str, answers: Vec<Canned>) -> Self {
        let path = format!(
            "/client/v4/accounts/{STUB_ACCOUNT}/registrar/registrations/{domain}/registration-status"
        );
        self.reveals.push(("GET".to_owned(), path, answers));
        self
    }

    /// A body written out in the test, served with `status`.
    pub(crate) fn raw(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
            reveals: Vec::new(),
        }
    }
}

/// A request's method and path.
pub(crate) type Route = (String, String);

/// A raw HTTP/1.1 stub: answers each `(method, path)` with its queue of canned
/// answers in order (the last one repeats), counting requests.
#[derive(Clone, Default)]
pub(crate) struct Stub {
    routes: Arc<Mutex<HashMap<Route, Vec<Canned>>>>,
    counts: Arc<Mutex<HashMap<Route, usize>>>,
    bodies: Arc<Mutex<HashMap<Route, Vec<Vec<u8>>>>>,
}

impl Stub {
    pub(crate) fn on(&self, method: &str, path: &str, answers: Vec<Canned>) {
        self.on_family(method, "registrar", path, answers);
    }

    /// [`Stub::on`] under an API family (`registrar` or `registrar-sandbox`).
    pub(crate) fn on_family(&self, method: &str, family: &str, path: &str, answers: Vec<Canned>) {
        let key = (
            method.to_owned(),
            format!("/client/v4/accounts/{STUB_ACCOUNT}/{family}{path}"),
        );
        self.routes.lock().unwrap().insert(key, answers);
    }

    /// Serves `answers` for a domain's registration-status.
    pub(crate) fn status(&self, domain: &str, answers: Vec<Canned>) {
        self.on(
            "GET",
            &format!("/registrations/{domain}/registration-status"),
            answers,
        );
    }

    pub(crate) fn count(&self, method: &str, path: &str) -> usize {
        let key = (
            method.to_owned(),
            format!("/client/v4/accounts/{STUB_ACCOUNT}/registrar{path}"),
        );
        self.counts.lock().unwrap().get(&key).copied().unwrap_or(0)
    }

    /// The bodies of the requests to `(method, path)` so far, as JSON.
    pub(crate) fn bodies(&self, method: &str, path: &str) -> Vec<Value> {
        let key = (
            method.to_owned(),
            format!("/client/v4/accounts/{STUB_ACCOUNT}/registrar{path}"),
        );
        let bodies = self.bodies.lock().unwrap();
        let bodies = bodies.get(&key).cloned().unwrap_or_default();
        bodies
            .iter()
            .map(|body| serde_json::from_slice(body).unwrap())
            .collect()
    }

    pub(crate) fn status_count(&self, domain: &str) -> usize {
        self.count(
            "GET",
            &format!("/registrations/{domain}/registration-status"),
        )
    }

    /// Answers every connection `listener` accepts, until the test ends.
    pub(crate) async fn serve(self, listener: TcpListener) {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(self.clone().answer(socket));
        }
    }

    /// Reads one request (head and `Content-Length` body) and answers it.
    async fn answer(self, mut socket: TcpStream) {
        let mut request = Vec::new();
        let mut buffer = [0; 4096];
        let head_end = loop {
            let Ok(read) = socket.read(&mut buffer).await else {
                return;
            };
            if read == 0 {
                return;
            }
            request.extend_from_slice(&buffer[..read]);
            if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
        };
        let head = String::from_utf8_lossy(&request[..head_end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        while request.len() < head_end + length {
            let Ok(read) = socket.read(&mut buffer).await else {
                return;
            };
            if read == 0 {
                return;
            }
            request.extend_from_slice(&buffer[..read]);
        }
        let mut words = head.split_whitespace();
        let key = (
            words.next().unwrap_or_default().to_owned(),
            words.next().unwrap_or_default().to_owned(),
        );
        self.bodies
            .lock()
            .unwrap()
            .entry(key.clone())
            .or_default()
            .push(request[head_end..head_end + length].to_vec());
        let seen = {
            let mut counts = self.counts.lock().unwrap();
            let count = counts.entry(key.clone()).or_default();
            *count += 1;
            *count
        };
        let canned = self
            .routes
            .lock()
            .unwrap()
            .get(&key)
            .map(|answers| answers[(seen - 1).min(answers.len() - 1)].clone());
        let canned = canned.unwrap_or_else(|| Canned::raw(599, "unrouted in the stub"));
        {
            let mut routes = self.routes.lock().unwrap();
            let mut counts = self.counts.lock().unwrap();
            for (method, path, answers) in &canned.reveals {
                // The revealed queue starts from its first answer.
                let route = (method.clone(), path.clone());
                counts.remove(&route);
                routes.insert(route, answers.clone());
            }
        }
        tokio::time::sleep(canned.delay).await;
        let mut response = format!("HTTP/1.1 {} Stub\r\nconnection: close\r\n", canned.status);
        if !canned
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            response.push_str("content-type: application/json\r\n");
        }
        for (name, value) in &canned.headers {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str(&format!("content-length: {}\r\n\r\n", canned.body.len()));
        let mut bytes = response.into_bytes();
        bytes.extend_from_slice(&canned.body);
        let _ = socket.write_all(&bytes).await;
        let _ = socket.shutdown().await;
    }
}
