//! The operation limits section: bounds on what one GraphQL operation may ask for.

use clap::Args;

use crate::graphql::{OperationLimits, QueryLimits};

/// Bounds on what one GraphQL operation may ask for.
#[derive(Debug, Args)]
pub struct LimitsConfig {
    /// Deepest nesting of fields and fragment spreads in an operation (answers OPERATION_TOO_DEEP past it).
    #[arg(long, env = "GATEWAY_MAX_DEPTH", default_value_t = 12)]
    pub max_depth: usize,
    /// Most fields in an operation, fragments expanded (answers OPERATION_TOO_COMPLEX past it).
    #[arg(long, env = "GATEWAY_MAX_COMPLEXITY", default_value_t = 1000)]
    pub max_complexity: u64,
    /// Most root fields in an operation, each alias counting (answers TOO_MANY_ROOT_FIELDS past it).
    #[arg(long, env = "GATEWAY_MAX_ROOT_FIELDS", default_value_t = 20)]
    pub max_root_fields: u64,
    /// Most registration statuses one operation may look up: one per registrationStatus, one per domain of registrationStatuses (answers TOO_MANY_LOOKUPS past it).
    #[arg(long, env = "GATEWAY_MAX_LOOKUPS", default_value_t = 100)]
    pub max_lookups: u64,
    /// Most domains in one registrationStatuses query.
    #[arg(long, env = "GATEWAY_MAX_DOMAINS", default_value_t = 100)]
    pub max_domains: usize,
    /// Refuse `__schema` and `__type` queries (answers INTROSPECTION_DISABLED).
    #[arg(long, env = "GATEWAY_DISABLE_INTROSPECTION")]
    pub disable_introspection: bool,
}

impl LimitsConfig {
    /// The per-query limits the resolvers enforce.
    pub fn query_limits(&self) -> QueryLimits {
        QueryLimits {
            max_domains: self.max_domains,
        }
    }

    /// The limits the schema enforces.
    pub fn operation_limits(&self) -> OperationLimits {
        OperationLimits {
            max_depth: self.max_depth,
            max_complexity: self.max_complexity,
            max_root_fields: self.max_root_fields,
            max_lookups: self.max_lookups,
            introspection: !self.disable_introspection,
        }
    }
}
