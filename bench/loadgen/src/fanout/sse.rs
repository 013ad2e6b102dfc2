//! One subscriber of the fan-out scenario over GraphQL over Server-Sent Events
//! (graphql-sse, "distinct connections mode"): a `POST /graphql` with `Accept:
//! text/event-stream` per subscriber, hence one HTTP connection each, then
//! `event: next` frames until `event: complete`. Events go to the coordinator
//! stamped with the instant they were read, as the websocket connections' do.

use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio::time::Duration;
use tokio_util::sync::CancellationToken;

use super::connection::{Event, Kind, NextPayload, ReadAt, SUBSCRIPTION};
use super::{CONNECT_CONCURRENCY, FanoutArgs};
use crate::error::BenchError;

/// Limit on the request until the response's headers.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Chunks read per subscriber at most (a bound on the read loop).
const MAX_CHUNKS: usize = 1024;
/// Longest frame buffered before the subscriber is failed (a bound on memory).
const MAX_FRAME: usize = 64 * 1024;

/// Opens every subscriber's stream (a few at a time) and starts their tasks.
pub(super) async fn open_all(
    url: &str,
    domains: &[String],
    args: &FanoutArgs,
    events: UnboundedSender<Vec<Event>>,
    stop: &CancellationToken,
) -> Result<Vec<JoinHandle<()>>, BenchError> {
    // No idle pooling: every subscriber holds its own connection for the whole run.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let opened: Vec<Result<JoinHandle<()>, BenchError>> =
        stream::iter(0..args.subscribers as usize)
            .map(|id| {
                let (client, events, stop) = (client.clone(), events.clone(), stop.clone());
                let domain = &domains[id % domains.len()];
                async move {
                    let response = subscribe(&client, url, domain).await?;
                    Ok(tokio::spawn(drive(response, events, stop)))
                }
            })
            .buffer_unordered(CONNECT_CONCURRENCY)
            .collect()
            .await;
    opened.into_iter().collect()
}

/// Sends the subscription and waits for a `200 text/event-stream` answer.
async fn subscribe(
    client: &reqwest::Client,
    url: &str,
    domain: &str,
) -> Result<reqwest::Response, BenchError> {
    let request = client
        .post(url)
        .header("accept", "text/event-stream")
        .json(&json!({ "query": SUBSCRIPTION, "variables": { "domain": domain } }))
        .send();
    let response = tokio::time::timeout(HANDSHAKE_TIMEOUT, request)
        .await
        .map_err(|_| BenchError::Unexpected("no SSE response headers in time".to_owned()))??;
    let is_stream = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"));
    if !response.status().is_success() || !is_stream {
        return Err(BenchError::Unexpected(format!(
            "SSE subscribe answered {} {:?}",
            response.status(),
            response.headers().get("content-type")
        )));
    }
    Ok(response)
}

/// Reads frames and reports events until `complete` or `stop`.
async fn drive(
    mut response: reqwest::Response,
    events: UnboundedSender<Vec<Event>>,
    stop: CancellationToken,
) {
    let report = |kind, fetched_at| {
        let _ = events.send(vec![Event::now(kind, fetched_at)]);
    };
    let mut buffer = String::new();
    for _ in 0..MAX_CHUNKS {
        let chunk = tokio::select! {
            () = stop.cancelled() => return,
            chunk = response.chunk() => chunk,
        };
        let Ok(Some(chunk)) = chunk else {
            report(Kind::Failed("the stream ended".to_owned()), None);
            return;
        };
        let read = ReadAt::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            match classify(&frame) {
                Some((Kind::Completed, _)) => {
                    let _ = events.send(vec![Event::read(Kind::Completed, None, read)]);
                    return;
                }
                Some((kind, fetched_at)) => {
                    let _ = events.send(vec![Event::read(kind, fetched_at, read)]);
                }
                None => {}
            }
        }
        if buffer.len() > MAX_FRAME {
            return report(Kind::Failed("an SSE frame over 64 KiB".to_owned()), None);
        }
    }
    report(Kind::Failed("too many chunks".to_owned()), None);
}

/// The event of one frame and its `fetchedAt`; `None` for keep-alive comments and
/// unknown events.
fn classify(frame: &str) -> Option<(Kind, Option<DateTime<Utc>>)> {
    let mut event = None;
    let mut data = String::new();
    for line in frame.lines() {
        if let Some(name) = line.strip_prefix("event:") {
            event = Some(name.trim());
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push_str(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    match event? {
        "complete" => Some((Kind::Completed, None)),
        "next" => Some(match serde_json::from_str::<NextPayload<'_>>(&data) {
            Ok(payload) => payload.read(|| serde_json::from_str(&data).unwrap_or_default()),
            Err(error) => (Kind::Failed(format!("next with bad JSON: {error}")), None),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_read_as_the_gateway_writes_them() {
        let next = "event: next\nid: 2\ndata: {\"data\":{\"registrationStatusChanged\":{\"sequence\":2,\
            \"status\":{\"fetchedAt\":\"2026-11-30T07:30:00.123456789+00:00\"}}}}\n\n";
        let fetched = DateTime::parse_from_rfc3339("2026-11-30T07:30:00.123456789Z").unwrap();
        assert_eq!(
            classify(next),
            Some((Kind::Changed, Some(fetched.with_timezone(&Utc))))
        );
        assert_eq!(
            classify("event: complete\ndata:\n\n"),
            Some((Kind::Completed, None))
        );
        assert_eq!(classify(":\n\n"), None);
        assert!(matches!(
            classify("event: next\ndata: {\"errors\":[]}\n\n"),
            Some((Kind::Failed(_), None))
        ));
    }
}
