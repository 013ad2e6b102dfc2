//! `GET …/registrations`: the account's registered domains in the platform's
//! envelope with a cursor `result_info` (`{cursor, per_page, count}`; an empty
//! cursor means no more pages), as in `docs/upstream-api.md` §1 and §6.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::SimulatorState;
use super::admission::{admit, capacity};
use super::reply::{self, ApiError};
use crate::wire::{ApiMessage, Registration};

/// `per_page` bounds and default, from the spec.
const PER_PAGE_MAX: usize = 50;
const PER_PAGE_DEFAULT: usize = 20;
/// The spec's `maxLength` of a cursor.
const CURSOR_MAX: usize = 256;

/// The query parameters the simulator reads (`sort_by` is accepted and ignored:
/// the simulator lists by domain name).
#[derive(Debug, Deserialize)]
pub(super) struct ListParams {
    cursor: Option<String>,
    per_page: Option<usize>,
    direction: Option<String>,
}

/// The list handler.
pub(super) async fn list(
    State(shared): State<Arc<SimulatorState>>,
    uri: Uri,
    Path(account): Path<String>,
    params: Result<Query<ListParams>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let admitted = match admit(&shared, &uri, &account, &headers) {
        Ok(admitted) => admitted,
        Err(error) => return error.into_response(),
    };
    let answer = match params
        .map_err(|_| ())
        .and_then(|Query(params)| check(params))
    {
        Err(()) => invalid("Invalid list parameters").into_response(),
        Ok(page) => match shared
            .store
            .registrations(&admitted.account, shared.clock.now())
        {
            Err(err) => capacity(err).into_response(),
            Ok(all) => page.answer(all),
        },
    };
    reply::with_quota(answer, admitted.quota)
}

/// One page asked for: after which domain, how many, in which direction.
#[derive(Debug, PartialEq, Eq)]
struct Page {
    after: Option<String>,
    per_page: usize,
    descending: bool,
}

impl Page {
    /// This page of `all` (sorted by name) in the platform's envelope, with the
    /// cursor of the next page, or `""` when there is none.
    fn answer(&self, mut all: Vec<Registration>) -> Response {
        if self.descending {
            all.reverse();
        }
        let start = self.after.as_ref().map_or(0, |after| {
            all.iter()
                .position(|registration| &registration.domain_name == after)
                .map_or(all.len(), |at| at + 1)
        });
        let page: Vec<_> = all.iter().skip(start).take(self.per_page).collect();
        let more = start + page.len() < all.len();
        let cursor = match (more, page.last()) {
            (true, Some(last)) => hex(&last.domain_name),
            _ => String::new(),
        };
        let body = json!({
            "success": true, "errors": [], "messages": [],
            "result": page,
            "result_info": { "count": page.len(), "cursor": cursor, "per_page": self.per_page },
        });
        (StatusCode::OK, axum::Json(body)).into_response()
    }
}

/// The page asked for, or `Err` when a parameter is invalid.
fn check(params: ListParams) -> Result<Page, ()> {
    let per_page = params.per_page.unwrap_or(PER_PAGE_DEFAULT);
    if !(1..=PER_PAGE_MAX).contains(&per_page) {
        return Err(());
    }
    let descending = match params.direction.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(()),
    };
    let after = match params.cursor.as_deref() {
        None | Some("") => None,
        Some(cursor) if cursor.len() <= CURSOR_MAX => Some(unhex(cursor).ok_or(())?),
        Some(_) => return Err(()),
    };
    Ok(Page {
        after,
        per_page,
        descending,
    })
}

fn invalid(message: &str) -> ApiError {
    ApiError::Validation(vec![ApiMessage::new(10000, message)])
}

/// The opaque cursor: the last listed domain, hex-encoded.
fn hex(text: &str) -> String {
    text.bytes().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(cursor: &str) -> Option<String> {
    if !cursor.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..cursor.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(cursor.get(at..at + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_parameters_are_refused() {
        assert_eq!(unhex(&hex("bravo.net")).as_deref(), Some("bravo.net"));
        assert_eq!(unhex("zz"), None);
        let params = |cursor: Option<&str>, per_page, direction: Option<&str>| ListParams {
            cursor: cursor.map(str::to_owned),
            per_page,
            direction: direction.map(str::to_owned),
        };
        let default = Page {
            after: None,
            per_page: 20,
            descending: false,
        };
        assert_eq!(check(params(None, None, None)), Ok(default));
        assert!(check(params(None, Some(0), None)).is_err());
        assert!(check(params(None, Some(51), None)).is_err());
        assert!(check(params(None, None, Some("sideways"))).is_err());
        assert!(check(params(Some("0"), None, None)).is_err());
    }
}
