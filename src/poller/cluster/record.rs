//! What one registration's poller leaves in Redis for the other replicas, and how
//! it is encoded: the entries of its event stream (a change, an end, a released
//! lease) and the checkpoint a replica taking over resumes from.
//!
//! Stream entries carry `kind`, `seq` (events only), `epoch` (the fencing token of
//! the lease holder that wrote it) and `data` (JSON).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::streams::StreamId;
use serde::{Deserialize, Serialize};

use super::ClusterError;
use crate::poller::backoff::BackoffPosition;
use crate::poller::feed::{PollerEnd, StatusEvent};
use crate::upstream::{UpstreamError, WorkflowState, WorkflowStatus};

/// `kind` of a change.
pub(super) const EVENT: &str = "event";
/// `kind` of an end subscribers are told of.
pub(super) const END: &str = "end";
/// `kind` of a lease given up on purpose: a follower may take it at once.
pub(super) const RELEASED: &str = "released";

/// One entry of a registration's stream.
#[derive(Debug)]
pub(crate) enum Record {
    /// A change of state, with its shared sequence number.
    Event(StatusEvent),
    /// Polling ended in a way subscribers are told of (not found, expired, gave up).
    End(PollerEnd),
    /// The holder gave the lease up (nobody watches it there, or it is stopping).
    Released,
}

/// A change as stored (the sequence is a field of its own).
#[derive(Serialize, Deserialize)]
struct EventData {
    previous_state: Option<WorkflowState>,
    status: WorkflowStatus,
    fetched_at: DateTime<Utc>,
    next_check_at: Option<DateTime<Utc>>,
}

/// An end as stored: the ends other replicas must report themselves.
#[derive(Serialize, Deserialize)]
enum EndData {
    NotFound,
    Expired { blocked_for: Duration },
    GaveUp(UpstreamError),
}

/// What a poller needs to go on where another replica's poller stopped: the
/// backoff position, the failures in a row, since when the workflow is blocked,
/// when the next poll is due and the newest status seen.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    pub(crate) backoff: BackoffPosition,
    pub(crate) failures: u32,
    pub(crate) blocked_since: Option<DateTime<Utc>>,
    pub(crate) next_check_at: Option<DateTime<Utc>>,
    pub(crate) last_fetched: Option<DateTime<Utc>>,
}

/// The `data` field of a change.
pub(super) fn encode_event(event: &StatusEvent) -> String {
    let data = EventData {
        previous_state: event.previous_state.clone(),
        status: (*event.status).clone(),
        fetched_at: event.fetched_at,
        next_check_at: event.next_check_at,
    };
    serde_json::to_string(&data).expect("a status event encodes as JSON")
}

/// The `data` field of an end, when it is one subscribers are told of.
pub(super) fn encode_end(end: &PollerEnd) -> Option<String> {
    let data = match end {
        PollerEnd::NotFound => EndData::NotFound,
        PollerEnd::Expired { blocked_for } => EndData::Expired {
            blocked_for: *blocked_for,
        },
        PollerEnd::GaveUp(error) => EndData::GaveUp((**error).clone()),
        PollerEnd::Completed
        | PollerEnd::ActionRequired
        | PollerEnd::Idle
        | PollerEnd::ShuttingDown => {
            return None;
        }
    };
    Some(serde_json::to_string(&data).expect("an end encodes as JSON"))
}

pub(super) fn encode_checkpoint(checkpoint: &Checkpoint) -> String {
    serde_json::to_string(checkpoint).expect("a checkpoint encodes as JSON")
}

pub(super) fn decode_checkpoint(json: &str) -> Result<Checkpoint, ClusterError> {
    serde_json::from_str(json).map_err(|error| ClusterError::Corrupt(error.to_string()))
}

/// Reads one stream entry.
pub(super) fn decode(entry: &StreamId) -> Result<Record, ClusterError> {
    let field = |name: &str| -> Result<String, ClusterError> {
        entry
            .get::<String>(name)
            .ok_or_else(|| ClusterError::Corrupt(format!("stream entry without {name}")))
    };
    let corrupt = |error: serde_json::Error| ClusterError::Corrupt(error.to_string());
    match field("kind")?.as_str() {
        EVENT => {
            let sequence = field("seq")?
                .parse()
                .map_err(|_| ClusterError::Corrupt("a sequence that is no number".into()))?;
            let data: EventData = serde_json::from_str(&field("data")?).map_err(corrupt)?;
            Ok(Record::Event(StatusEvent {
                sequence,
                previous_state: data.previous_state,
                status: Arc::new(data.status),
                fetched_at: data.fetched_at,
                next_check_at: data.next_check_at,
            }))
        }
        END => {
            let data: EndData = serde_json::from_str(&field("data")?).map_err(corrupt)?;
            Ok(Record::End(match data {
                EndData::NotFound => PollerEnd::NotFound,
                EndData::Expired { blocked_for } => PollerEnd::Expired { blocked_for },
                EndData::GaveUp(error) => PollerEnd::GaveUp(Arc::new(error)),
            }))
        }
        RELEASED => Ok(Record::Released),
        other => Err(ClusterError::Corrupt(format!(
            "unknown stream entry kind {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    fn entry(fields: &[(&str, String)]) -> StreamId {
        StreamId {
            id: "1-0".into(),
            map: fields
                .iter()
                .map(|(name, value)| (name.to_string(), Value::BulkString(value.clone().into())))
                .collect(),
            ..StreamId::default()
        }
    }

    #[test]
    fn events_and_ends_read_back_as_written() {
        let status: WorkflowStatus = serde_json::from_value(serde_json::json!({
            "state": "in_progress", "completed": false,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:05Z",
            "links": {"self": "/x", "resource": "/y"}
        }))
        .unwrap();
        let event = StatusEvent {
            sequence: 7,
            previous_state: Some(WorkflowState::Pending),
            status: Arc::new(status),
            fetched_at: Utc::now(),
            next_check_at: None,
        };
        let written = entry(&[
            ("kind", EVENT.into()),
            ("seq", "7".into()),
            ("data", encode_event(&event)),
        ]);
        let Ok(Record::Event(read)) = decode(&written) else {
            panic!("not an event")
        };
        assert_eq!(read.sequence, 7);
        assert_eq!(read.status, event.status);
        assert_eq!(read.previous_state, Some(WorkflowState::Pending));

        let gave_up = PollerEnd::GaveUp(Arc::new(UpstreamError::Unavailable {
            status: 503,
            retry_after: Some(Duration::from_secs(3)),
        }));
        let written = entry(&[
            ("kind", END.into()),
            ("data", encode_end(&gave_up).unwrap()),
        ]);
        let Ok(Record::End(PollerEnd::GaveUp(error))) = decode(&written) else {
            panic!("not the end written")
        };
        assert_eq!(error.retry_after(), Some(Duration::from_secs(3)));
        assert!(encode_end(&PollerEnd::Idle).is_none());
    }

    #[test]
    fn a_corrupt_entry_is_an_error_not_a_panic() {
        let written = entry(&[("kind", EVENT.into()), ("seq", "x".into())]);
        assert!(matches!(decode(&written), Err(ClusterError::Corrupt(_))));
        let written = entry(&[("kind", "?".into())]);
        assert!(matches!(decode(&written), Err(ClusterError::Corrupt(_))));
    }
}
