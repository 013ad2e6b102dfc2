//! The GraphQL schema: types, the query root, operation limits and the error enum,
//! kept apart from any transport. [`build_schema`] wires it to the gateway's services,
//! as a standalone schema or (`--federation`) as a Federation v2 subgraph.

mod compiled;
mod contacts;
mod documents;
mod error;
mod fanout;
mod federation;
mod input;
mod limits;
mod mutation;
mod query;
mod share;
mod subscription;
mod syntax_error;
mod types;
mod validation;

use std::any::{Any, TypeId};
use std::sync::Arc;

use async_graphql::{
    Context, Data, Executor, ObjectType, Request, Response, SDLExportOptions, Schema,
    SchemaBuilder, ServerError,
};
use futures::StreamExt;
use futures::stream::BoxStream;

pub use compiled::Compiled;
pub use documents::{AdmittedDocument, PersistedQueries, PersistedQueryError};
pub use error::{CLIENT_RATE_LIMITED, GraphqlError, TOO_MANY_CREDENTIALS};
pub use fanout::{Delivered, FRAME_SLOTS, FanoutResponse, Recipient, Subscribed};
pub use limits::{MAX_NESTING, OperationLimits, check_nesting};
pub use mutation::{MutationRoot, PrivacyMode, RegistrationPolicy};
pub use query::{QueryLimits, QueryRoot};
pub use subscription::{LastEventId, SubscriptionAdmission, SubscriptionPlace, SubscriptionRoot};
pub use types::RegistrationStatus;
use validation::cap_errors;
pub use validation::{MAX_ERRORS, PARSE_FAILED, VALIDATION_FAILED, with_code};

use self::documents::Documents;
use self::fanout::Fanout;
use self::federation::{EntityPositions, EntityRoot, SubgraphQuery};
use self::query::StandaloneQuery;
use crate::access::AccessPolicy;
use crate::credential::Credential;
use crate::fair_share::{ClientId, FairShare};
use crate::metrics::{GraphqlOutcome, OperationKind};
use crate::registrations::RegistrationService;

/// Which schema the gateway serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaShape {
    /// The public schema, on its own (`schema/schema.graphql`).
    Standalone,
    /// The same schema as an Apollo Federation v2 subgraph, with `_service`,
    /// `_entities` and the `Domain` entity (`schema/subgraph.graphql`).
    Subgraph,
}

impl SchemaShape {
    /// The subgraph when `federation` is set (`--federation`), else the standalone schema.
    pub fn federated_if(federation: bool) -> Self {
        match federation {
            true => Self::Subgraph,
            false => Self::Standalone,
        }
    }
}

/// The gateway's executable schema: async-graphql's, with the operation limits
/// checked before anything runs, on every transport (HTTP, both websocket protocols).
#[derive(Clone)]
pub struct GatewaySchema {
    schema: Executable,
    limits: OperationLimits,
    /// Subscriptions that ask for the same thing share one execution.
    fanout: Arc<Fanout>,
    /// Each client's share of open subscriptions, taken per subscriber of a shared execution.
    shares: FairShare,
    /// Behind one `Arc`: the HTTP handlers' state, this schema with it, is cloned
    /// per request, and each moka cache in here costs several reference counts.
    parts: Arc<Parts>,
}

/// The document caches, and the services compiled queries read (the resolvers
/// read the same services from schema data).
struct Parts {
    /// Documents parsed once per distinct text.
    documents: Documents,
    /// Apollo's automatic persisted queries.
    persisted: PersistedQueries,
    registrations: RegistrationService,
    access: AccessPolicy,
}

/// How a subscription runs (see [`GatewaySchema::sharing`]).
enum Sharing {
    /// In the shared execution of its key, holding its places.
    Shared((fanout::Key, fanout::RootField), Request, fanout::Places),
    /// On its own, with its connection's admission in its data.
    Alone(Request, Option<Arc<Data>>),
}

/// async-graphql's schema for each [`SchemaShape`] (their query roots are different types).
#[derive(Clone)]
enum Executable {
    Standalone(Schema<StandaloneQuery, MutationRoot, SubscriptionRoot>),
    Subgraph(Schema<SubgraphQuery, MutationRoot, SubscriptionRoot>),
}

impl GatewaySchema {
    /// Runs a query or mutation; an answer carries at most [`MAX_ERRORS`] errors.
    /// Always through async-graphql: a response that is not a request error
    /// marks the document validated (see [`AdmittedDocument::validated`]).
    pub async fn execute(&self, mut request: Request) -> Response {
        let admitted = match self.admit(&mut request) {
            Ok(admitted) => admitted,
            Err(refusal) => return cap_errors(Response::from_errors(vec![refusal])),
        };
        match &self.schema {
            Executable::Standalone(schema) => {
                let response = cap_errors(schema.execute(request).await);
                if !is_request_error(&response) {
                    admitted.validated();
                }
                response
            }
            Executable::Subgraph(schema) => {
                let request = request.data(EntityPositions::default());
                cap_errors(schema.execute(request).await)
            }
        }
    }

    /// `request`'s document, parsed now or taken from the documents parsed before;
    /// a request error when it nests too deep or does not parse.
    pub fn document(&self, request: &Request) -> Result<Arc<AdmittedDocument>, ServerError> {
        self.parts.documents.admitted(request, &self.limits)
    }

    /// Answers a query from the compiled plan of its document, `admitted` (see
    /// [`compiled`]), without async-graphql; `None` when the document has no plan
    /// or this request is one the plan leaves to [`GatewaySchema::execute`].
    pub async fn execute_compiled(
        &self,
        request: &Request,
        admitted: &AdmittedDocument,
    ) -> Option<Compiled> {
        // A plan exists only once the limits passed the document (it ran), and
        // their verdict on a document of the subset does not depend on its
        // variables (one `registrationStatus` is one lookup): not asked again.
        let plan = admitted.plan()?;
        plan.answer(self, request).await
    }

    /// The operation type `request` will run, read from the document cache (so
    /// executing it does not parse again); `Unknown` when it does not parse, is
    /// refused by the limits, or names no single operation (executing it reports why).
    pub fn operation_kind(&self, request: &Request) -> OperationKind {
        let document = self.document(request).ok();
        let name = request.operation_name.as_deref();
        OperationKind::from(document.and_then(|admitted| admitted.operation_type(name)))
    }

    /// Apollo's automatic persisted queries, for the HTTP transport.
    pub fn persisted_queries(&self) -> &PersistedQueries {
        &self.parts.persisted
    }

    /// Hands `request` its parsed document and checks it against the operation limits.
    fn admit(&self, request: &mut Request) -> Result<Arc<AdmittedDocument>, ServerError> {
        let admitted = self.document(request)?;
        request.set_parsed_query(admitted.document().clone());
        admitted.verdict(&self.limits, &request.variables)?;
        Ok(admitted)
    }

    /// Runs any operation as a stream of results, for the transports that stream
    /// (websockets, SSE, multipart). A subscription shares its execution with every
    /// other one of the same document, operation, variables and credential (see
    /// [`fanout`]); `connection` is the subscriber's connection budget, if it has one.
    pub fn subscribe(
        &self,
        request: Request,
        connection: Option<Arc<dyn SubscriptionAdmission>>,
    ) -> BoxStream<'static, Arc<FanoutResponse>> {
        self.shared_stream(request, None, connection)
    }

    /// [`GatewaySchema::subscribe`], with a subscription that shares an execution
    /// pushing its results to `delivery` (see [`Recipient`]) rather than streaming
    /// them; one that cannot share still streams.
    pub fn subscribe_delivered(
        &self,
        request: Request,
        connection: Option<Arc<dyn SubscriptionAdmission>>,
        delivery: Box<dyn Recipient>,
    ) -> Subscribed {
        match self.sharing(request, None, connection) {
            Sharing::Shared(key, request, places) => {
                let schema = self.clone();
                self.fanout.join_delivered(
                    key,
                    request,
                    places,
                    move |request| schema.stream(request, None),
                    delivery,
                )
            }
            Sharing::Alone(request, session) => Subscribed::Stream(self.alone(request, session)),
        }
    }

    fn shared_stream(
        &self,
        request: Request,
        session: Option<Arc<Data>>,
        connection: Option<Arc<dyn SubscriptionAdmission>>,
    ) -> BoxStream<'static, Arc<FanoutResponse>> {
        match self.sharing(request, session, connection) {
            Sharing::Shared(key, request, places) => {
                let schema = self.clone();
                self.fanout.join(key, request, places, move |request| {
                    schema.stream(request, None)
                })
            }
            Sharing::Alone(request, session) => self.alone(request, session),
        }
    }

    /// Whether `request` joins a shared execution (see [`fanout`]), with the
    /// subscriber's places taken, or runs on its own.
    fn sharing(
        &self,
        mut request: Request,
        session: Option<Arc<Data>>,
        connection: Option<Arc<dyn SubscriptionAdmission>>,
    ) -> Sharing {
        let credential = data_of::<Credential>(&request.data)
            .or_else(|| session.as_deref().and_then(data_of::<Credential>))
            .cloned();
        let document = self.document(&request).ok();
        let key = document.as_deref().and_then(|admitted| {
            fanout::shareable(&request, admitted.document(), credential.as_ref())
        });
        if let Some(key) = key {
            let slot = match &connection {
                Some(connection) => connection.admit().ok().map(Some),
                None => Some(None),
            };
            let client = data_of::<ClientId>(&request.data)
                .or_else(|| session.as_deref().and_then(data_of::<ClientId>))
                .copied();
            let held = match client {
                Some(client) => self.shares.hold_subscription(client).ok().map(Some),
                None => Some(None),
            };
            // Without a free place on the connection or in the client's share, the
            // subscription runs on its own and its resolver refuses it as usual.
            if let (Some(slot), Some(held)) = (slot, held) {
                if let Some(credential) = credential {
                    request = request.data(credential);
                }
                request = request.data(share::SharesHeldPerSubscriber);
                return Sharing::Shared(key, request, (slot, held));
            }
        }
        if let Some(connection) = connection {
            request = request.data(connection);
        }
        Sharing::Alone(request, session)
    }

    /// A subscription that runs on its own, its results wrapped as shared ones.
    fn alone(
        &self,
        request: Request,
        session: Option<Arc<Data>>,
    ) -> BoxStream<'static, Arc<FanoutResponse>> {
        self.stream(request, session)
            .map(|response| Arc::new(FanoutResponse::new(response)))
            .boxed()
    }

    fn stream(
        &self,
        mut request: Request,
        session: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        if let Err(refusal) = self.admit(&mut request) {
            let refused = cap_errors(Response::from_errors(vec![refusal]));
            return futures::stream::once(async { refused }).boxed();
        }
        match &self.schema {
            Executable::Standalone(schema) => Executor::execute_stream(schema, request, session)
                .map(cap_errors)
                .boxed(),
            Executable::Subgraph(schema) => {
                let request = request.data(EntityPositions::default());
                Executor::execute_stream(schema, request, session)
                    .map(cap_errors)
                    .boxed()
            }
        }
    }
}

/// For async-graphql-axum's websocket (the legacy protocol).
impl Executor for GatewaySchema {
    async fn execute(&self, request: Request) -> Response {
        GatewaySchema::execute(self, request).await
    }

    /// Subscriptions share executions here too; each subscriber gets its own copy
    /// of a shared result, which the legacy protocol serialises itself.
    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let connection = session_data
            .as_deref()
            .and_then(data_of::<Arc<dyn SubscriptionAdmission>>)
            .cloned();
        self.shared_stream(request, session_data, connection)
            .map(|shared| shared.to_response())
            .boxed()
    }
}

/// The schema of `shape` with its services attached and `limits` enforced on every operation.
pub fn build_schema(
    shape: SchemaShape,
    registrations: RegistrationService,
    access: AccessPolicy,
    query_limits: QueryLimits,
    registration: RegistrationPolicy,
    limits: OperationLimits,
    shares: FairShare,
) -> GatewaySchema {
    let max_subscribers = registrations.pollers().max_watchers();
    let client_shares = shares.clone();
    let services = Services {
        registrations: registrations.clone(),
        access: access.clone(),
        query_limits,
        registration,
        shares,
    };
    let schema = match shape {
        SchemaShape::Standalone => {
            let builder = with_services(builder(StandaloneQuery(QueryRoot)), services, limits);
            Executable::Standalone(builder.finish())
        }
        SchemaShape::Subgraph => {
            let builder = with_services(subgraph_builder(), services, limits);
            Executable::Subgraph(builder.finish())
        }
    };
    GatewaySchema {
        schema,
        limits,
        fanout: Arc::new(Fanout::new(max_subscribers)),
        shares: client_shares,
        parts: Arc::new(Parts {
            documents: Documents::new(),
            persisted: PersistedQueries::new(),
            registrations,
            access,
        }),
    }
}

/// What resolvers read from schema data (see [`service`]).
struct Services {
    registrations: RegistrationService,
    access: AccessPolicy,
    query_limits: QueryLimits,
    registration: RegistrationPolicy,
    shares: FairShare,
}

/// Attaches the services resolvers read, and the limits async-graphql enforces itself.
fn with_services<Q: ObjectType + 'static>(
    builder: SchemaBuilder<Q, MutationRoot, SubscriptionRoot>,
    services: Services,
    limits: OperationLimits,
) -> SchemaBuilder<Q, MutationRoot, SubscriptionRoot> {
    let builder = builder
        .data(services.registrations)
        .data(services.access)
        .data(services.query_limits)
        .data(services.registration)
        .data(services.shares)
        .limit_recursive_depth(MAX_NESTING);
    match limits.introspection {
        true => builder,
        false => builder.disable_introspection(),
    }
}

/// The schema's roots: `query` with the gateway's mutation and subscription roots.
fn builder<Q: ObjectType + 'static>(query: Q) -> SchemaBuilder<Q, MutationRoot, SubscriptionRoot> {
    Schema::build(query, MutationRoot, SubscriptionRoot)
}

/// The subgraph: federation on, and `Subscription` kept in its SDL so a federated
/// gateway can offer it (it subscribes to this subgraph over graphql-transport-ws).
fn subgraph_builder() -> SchemaBuilder<SubgraphQuery, MutationRoot, SubscriptionRoot> {
    builder(SubgraphQuery(QueryRoot, EntityRoot))
        .enable_federation()
        .enable_subscription_in_federation()
}

/// A service the schema was built with (see [`build_schema`]): the resolvers' one way to read schema data.
fn service<'a, T: Send + Sync + 'static>(ctx: &Context<'a>) -> Result<&'a T, GraphqlError> {
    ctx.data::<T>()
        .map_err(|error| GraphqlError::Internal(error.message))
}

/// The Cloudflare credential a request's upstream calls use: the caller's own when
/// the transport admitted one into the request data (from HTTP headers, or from a
/// websocket `connection_init` payload via [`AccessPolicy::admit_init_payload`]) and
/// the credential mode passes it through; else the gateway's own when the mode
/// allows; else `UNAUTHENTICATED`, before any upstream call.
pub fn caller_credential<'a>(ctx: &Context<'a>) -> Result<&'a Credential, GraphqlError> {
    let access = service::<AccessPolicy>(ctx)?;
    access
        .credential_for(ctx.data_opt::<Credential>())
        .map_err(GraphqlError::from)
}

/// `T` from a request's or a connection's data.
fn data_of<T: Any>(data: &Data) -> Option<&T> {
    data.get(&TypeId::of::<T>())?.downcast_ref::<T>()
}

/// How an executed operation ended, as the metrics count it.
pub fn outcome(response: &Response) -> GraphqlOutcome {
    if is_request_error(response) {
        GraphqlOutcome::RequestError
    } else if response.errors.is_empty() {
        GraphqlOutcome::Ok
    } else {
        GraphqlOutcome::Error
    }
}

/// Whether a response is a request error: nothing executed (parse, validation or
/// variable errors), so there is no data and no error has a path.
pub fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

/// The SDL of `shape`, as kept in `schema/`: the standalone schema as
/// introspection reports it, `@specifiedBy` included (tests/interop/introspection.mjs
/// compares them); the subgraph exactly as `_service { sdl }` answers it (with its
/// federation `@link`).
pub fn sdl(shape: SchemaShape) -> String {
    match shape {
        SchemaShape::Standalone => builder(StandaloneQuery(QueryRoot))
            .finish()
            .sdl_with_options(SDLExportOptions::new().include_specified_by()),
        SchemaShape::Subgraph => subgraph_builder()
            .finish()
            .sdl_with_options(SDLExportOptions::new().federation().compose_directive()),
    }
}
