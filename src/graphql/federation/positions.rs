//! Where each entity sits in an `_entities` batch, so that its error can say so.
//!
//! async-graphql 7.2.1 resolves every representation with the `_entities` field's
//! own path, without the item's index, and the entity resolvers are not told it.
//! So the first entity of a batch to ask reads the batch's representations once
//! and indexes their positions by entity type and key; each entity then takes one
//! position of its key. Which of several equal representations gets which does
//! not matter: they resolve alike.

use std::collections::HashMap;
use std::sync::Mutex;

use async_graphql::{Context, Pos, Value};

use super::ENTITY_KEYS;

/// An entity's identity in a batch: its type and its key's value.
type EntityKey = (String, String);
/// The positions of one `_entities` field's representations not taken yet.
type Batch = HashMap<EntityKey, Vec<usize>>;

/// Per request (the schema adds one to each): the batches of the operation's
/// `_entities` fields, by where each field is in the document.
#[derive(Default)]
pub(crate) struct EntityPositions(Mutex<HashMap<Pos, Batch>>);

impl EntityPositions {
    /// A position of the `typename` entity whose key is `key` in the `_entities`
    /// field that `ctx` resolves; `None` outside a subgraph request.
    pub(super) fn take(ctx: &Context<'_>, typename: &str, key: &str) -> Option<usize> {
        let positions = ctx.data_opt::<EntityPositions>()?;
        let mut batches = positions.0.lock().ok()?;
        let batch = batches.entry(ctx.item.pos).or_insert_with(|| index(ctx));
        batch.get_mut(&(typename.to_owned(), key.to_owned()))?.pop()
    }
}

/// Every representation's position by entity type and key, lowest last (taken
/// first); representations of other shapes are left out (async-graphql refuses them).
fn index(ctx: &Context<'_>) -> Batch {
    let mut batch = Batch::new();
    let arguments = ctx.field().arguments().unwrap_or_default();
    let representations = arguments
        .into_iter()
        .find_map(|(name, value)| (name.as_str() == "representations").then_some(value));
    let Some(Value::List(representations)) = representations else {
        return batch;
    };
    for (position, representation) in representations.iter().enumerate().rev() {
        if let Some(key) = entity_key(representation) {
            batch.entry(key).or_default().push(position);
        }
    }
    batch
}

/// A representation's type and key value, when it is one of this subgraph's entities.
fn entity_key(representation: &Value) -> Option<EntityKey> {
    let Value::Object(fields) = representation else {
        return None;
    };
    let Some(Value::String(typename)) = fields.get("__typename") else {
        return None;
    };
    let (_, key_field) = ENTITY_KEYS.iter().find(|(name, _)| name == typename)?;
    let Some(Value::String(key)) = fields.get(*key_field) else {
        return None;
    };
    Some((typename.clone(), key.clone()))
}
