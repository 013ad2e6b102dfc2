//! Writing a response from a [`Plan`]: `{"data":{"<key>":{...}}}` serialised
//! straight from the status, field by field in the plan's order, each value in
//! the form async-graphql gives it (`DateTime` as `to_rfc3339`, enums by their
//! GraphQL names, `Json` verbatim, `Float` as serde_json writes an `f64`), with
//! the values the resolvers answer (the same methods of [`RegistrationStatus`]).

use async_graphql::Name;
use async_graphql::resolver_utils::EnumType;
use chrono::{DateTime, Utc};
use serde::ser::{Serialize, SerializeMap, Serializer};

use super::plan::{
    ActionRequiredField, BlockedField, ErrorField, LinksField, RegistrationField, StatusField,
};
use crate::graphql::types::WorkflowState;
use crate::graphql::types::{ActionRequired, Blocked, Registration, RegistrationStatus};
use crate::upstream::{Links, WorkflowError};

/// The body of a response whose one root field, `key`, answered `status`.
pub(super) struct Body<'a> {
    pub(super) key: &'a str,
    pub(super) fields: &'a [(Name, StatusField)],
    pub(super) status: Option<&'a RegistrationStatus>,
}

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut body = serializer.serialize_map(Some(1))?;
        body.serialize_entry("data", &Data(self))?;
        body.end()
    }
}

struct Data<'a>(&'a Body<'a>);

impl Serialize for Data<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Body {
            key,
            fields,
            status,
        } = self.0;
        let mut data = serializer.serialize_map(Some(1))?;
        let status = status.map(|status| Selected { fields, of: status });
        data.serialize_entry(*key, &status)?;
        data.end()
    }
}

/// `of`'s fields in `fields`' order, under their response keys.
struct Selected<'a, F, T> {
    fields: &'a [(Name, F)],
    of: &'a T,
}

/// How one type writes one of its fields.
trait WriteField<F> {
    fn write<M: SerializeMap>(&self, map: &mut M, key: &str, field: &F) -> Result<(), M::Error>;
}

impl<F, T: WriteField<F>> Serialize for Selected<'_, F, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.fields.len()))?;
        for (key, field) in self.fields {
            self.of.write(&mut map, key.as_str(), field)?;
        }
        map.end()
    }
}

/// An object field: the object's selection, or null.
fn object<'a, F, T>(fields: &'a [(Name, F)], of: Option<&'a T>) -> Option<Selected<'a, F, T>> {
    of.map(|of| Selected { fields, of })
}

/// The `DateTime` scalar's form.
fn date_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339()
}

/// An enum value's GraphQL name.
fn enum_name<E: EnumType>(value: E) -> &'static str {
    E::items()
        .iter()
        .find(|item| item.value == value)
        .map_or("", |item| item.name)
}

impl WriteField<StatusField> for RegistrationStatus {
    fn write<M: SerializeMap>(
        &self,
        map: &mut M,
        key: &str,
        field: &StatusField,
    ) -> Result<(), M::Error> {
        let workflow = self.workflow();
        match field {
            StatusField::Typename => map.serialize_entry(key, "RegistrationStatus"),
            StatusField::DomainName => map.serialize_entry(key, self.domain().as_str()),
            StatusField::State => {
                map.serialize_entry(key, enum_name::<WorkflowState>(self.state_value()))
            }
            StatusField::RawState => map.serialize_entry(key, workflow.state.as_str()),
            StatusField::Completed => map.serialize_entry(key, &workflow.completed),
            StatusField::CreatedAt => map.serialize_entry(key, &date_time(workflow.created_at)),
            StatusField::UpdatedAt => map.serialize_entry(key, &date_time(workflow.updated_at)),
            StatusField::Links(fields) => {
                map.serialize_entry(key, &object(fields, Some(&workflow.links)))
            }
            StatusField::Context => map.serialize_entry(key, &workflow.context),
            StatusField::Error(fields) => {
                map.serialize_entry(key, &object(fields, workflow.error.as_ref()))
            }
            StatusField::ActionRequired(fields) => {
                let value = self.action_required_value();
                map.serialize_entry(key, &object(fields, value.as_ref()))
            }
            StatusField::Blocked(fields) => {
                let value = self.blocked_value();
                map.serialize_entry(key, &object(fields, value.as_ref()))
            }
            StatusField::NextCheckAt => {
                map.serialize_entry(key, &self.next_check_at_value().map(date_time))
            }
            StatusField::Registration(fields) => {
                let value = self.registration_value();
                map.serialize_entry(key, &object(fields, value.as_ref()))
            }
            StatusField::FetchedAt => map.serialize_entry(key, &date_time(self.fetched_at_value())),
            StatusField::AgeSeconds => map.serialize_entry(key, &self.age_seconds_value()),
            StatusField::Stale => map.serialize_entry(key, &self.stale_value()),
        }
    }
}

impl WriteField<LinksField> for Links {
    fn write<M: SerializeMap>(
        &self,
        map: &mut M,
        key: &str,
        field: &LinksField,
    ) -> Result<(), M::Error> {
        match field {
            LinksField::Typename => map.serialize_entry(key, "WorkflowLinks"),
            LinksField::SelfLink => map.serialize_entry(key, &self.self_link),
            LinksField::Resource => map.serialize_entry(key, &self.resource),
        }
    }
}

impl WriteField<ErrorField> for WorkflowError {
    fn write<M: SerializeMap>(
        &self,
        map: &mut M,
        key: &str,
        field: &ErrorField,
    ) -> Result<(), M::Error> {
        match field {
            ErrorField::Typename => map.serialize_entry(key, "WorkflowError"),
            ErrorField::Code => map.serialize_entry(key, &self.code),
            ErrorField::Message => map.serialize_entry(key, &self.message),
        }
    }
}

impl WriteField<ActionRequiredField> for ActionRequired {
    fn write<M: SerializeMap>(
        &self,
        map: &mut M,
        key: &str,
        field: &ActionRequiredField,
    ) -> Result<(), M::Error> {
        match field {
            ActionRequiredField::Typename => map.serialize_entry(key, "ActionRequired"),
            ActionRequiredField::Action => map.serialize_entry(key, &self.action),
            ActionRequiredField::ConfirmationSentTo => {
                map.serialize_entry(key, &self.confirmation_sent_to)
            }
        }
    }
}

impl WriteField<BlockedField> for Blocked {
    fn write<M: SerializeMap>(
        &self,
        map: &mut M,
        key: &str,
        field: &BlockedField,
    ) -> Result<(), M::Error> {
        match field {
            BlockedField::Typename => map.serialize_entry(key, "Blocked"),
            BlockedField::BlockedBy => map.serialize_entry(key, &self.blocked_by),
            BlockedField::Detail => map.serialize_entry(key, &self.detail),
        }
    }
}

impl WriteField<RegistrationField> for Registration {
    fn write<M: SerializeMap>(
        &self,
        map: &mut M,
        key: &str,
        field: &RegistrationField,
    ) -> Result<(), M::Error> {
        let registration = &self.0;
        match field {
            RegistrationField::Typename => map.serialize_entry(key, "Registration"),
            RegistrationField::DomainName => map.serialize_entry(key, &registration.domain_name),
            RegistrationField::Status => map.serialize_entry(key, &registration.status),
            RegistrationField::CreatedAt => {
                map.serialize_entry(key, &date_time(registration.created_at))
            }
            RegistrationField::ExpiresAt => {
                map.serialize_entry(key, &registration.expires_at.map(date_time))
            }
            RegistrationField::AutoRenew => map.serialize_entry(key, &registration.auto_renew),
            RegistrationField::PrivacyMode => map.serialize_entry(key, &registration.privacy_mode),
            RegistrationField::Locked => map.serialize_entry(key, &registration.locked),
        }
    }
}
