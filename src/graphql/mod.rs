//! The GraphQL schema: types, the query root, operation limits and the error enum,
//! kept apart from any transport. [`build_schema`] wires it to the gateway's services,
//! as a standalone schema or (`--federation`) as a Federation v2 subgraph.

mod admission;
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

use async_graphql::parser::types::OperationType;
use async_graphql::{
    Context, Data, Executor, ObjectType, Request, Response, SDLExportOptions, Schema,
    SchemaBuilder, ServerError,
};
use futures::StreamExt;
use futures::stream::BoxStream;

pub use admission::{SubscriptionAdmission, SubscriptionPlace};
pub use compiled::{Compiled, compiled_fields};
pub use documents::{AdmittedDocument, PersistedQueries, PersistedQueryError};
pub use error::{CLIENT_RATE_LIMITED, GraphqlError, TOO_MANY_CREDENTIALS};
pub use fanout::{Delivered, FRAME_SLOTS, FanoutResponse, Recipient, Subscribed};
pub use limits::{MAX_NESTING, OperationLimits, check_nesting};
pub use mutation::{MutationRoot, PrivacyMode, RegistrationPolicy};
pub use query::{QueryLimits, QueryRoot};
pub use subscription::{LastEventId, SubscriptionRoot};
pub use types::RegistrationStatus;
use validation::cap_errors;
pub use validation::{MAX_ERRORS, PARSE_FAILED, VALIDATION_FAILED, with_code};

use self::admission::{PendingPlaces, SubscriberPlaces};
use self::documents::Documents;
use self::fanout::Fanout;
use self::federation::{EntityPositions, EntityRoot, SubgraphQuery};
use self::query::StandaloneQuery;
use crate::access::AccessPolicy;
use crate::credential::Credential;
use crate::fair_share::FairShare;
use crate::metrics::{GraphqlOutcome, Metrics, OperationKind};
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
    /// What resolvers and compiled queries read.
    services: Arc<Services>,
}

/// How a query or mutation was answered (see [`GatewaySchema::answer`]).
pub enum Answer {
    /// From the compiled plan of its document.
    Compiled(Compiled),
    /// By async-graphql.
    Executed(Response),
}

/// How a subscription runs (see [`GatewaySchema::sharing`]).
enum Sharing {
    /// In the shared execution of its key, holding its places.
    Shared((fanout::Key, fanout::RootField), Request, SubscriberPlaces),
    /// On its own (a subscription with its places, or their refusal, in its
    /// request data), with its document when it parsed.
    Alone(Request, Option<Arc<Data>>, Option<Arc<AdmittedDocument>>),
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

    /// Answers a query or mutation whose document is `admitted`, on any transport:
    /// the one place that decides its path. A query whose compiled plan covers the
    /// request is answered from it (see [`compiled`]) and counted in
    /// `graphql_compiled_queries`; anything else runs through async-graphql.
    pub async fn answer(&self, request: Request, admitted: &AdmittedDocument) -> Answer {
        match self.compiled(&request, admitted, None).await {
            Some(compiled) => Answer::Compiled(compiled),
            None => Answer::Executed(self.execute(request).await),
        }
    }

    /// Answers a query from the compiled plan of its document, `admitted` (see
    /// [`compiled`]), without async-graphql and without counting it; `None` when
    /// the document has no plan or this request is one the plan leaves to
    /// [`GatewaySchema::execute`]. [`GatewaySchema::answer`] is the transports' way in.
    pub async fn execute_compiled(
        &self,
        request: &Request,
        admitted: &AdmittedDocument,
    ) -> Option<Compiled> {
        // A plan exists only once the limits passed the document (it ran), and
        // their verdict on a document of the subset does not depend on its
        // variables (one `registrationStatus` is one lookup): not asked again.
        let plan = admitted.plan()?;
        plan.answer(self, request, None).await
    }

    /// [`GatewaySchema::execute_compiled`] with the caller's credential and client
    /// read from `session` too (a legacy websocket connection's data), counted.
    async fn compiled(
        &self,
        request: &Request,
        admitted: &AdmittedDocument,
        session: Option<&Data>,
    ) -> Option<Compiled> {
        let compiled = admitted.plan()?.answer(self, request, session).await?;
        self.parts.services.metrics.compiled_query();
        Some(compiled)
    }

    /// The operation type `request` will run, read from the document cache (so
    /// executing it does not parse again); `Unknown` when it does not parse, is
    /// refused by the limits, or names no single operation (executing it reports why).
    pub fn operation_kind(&self, request: &Request) -> OperationKind {
        let document = self.document(request).ok();
        let name = request.operation_name.as_deref();
        OperationKind::from(document.and_then(|admitted| admitted.operation_type(name)))
    }

    /// The services the schema was built with: the transports admit callers
    /// through its access policy and tell clients apart through its fair shares.
    pub fn services(&self) -> &Services {
        &self.parts.services
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
            Sharing::Alone(request, session, document) => {
                Subscribed::Stream(self.alone(request, session, document))
            }
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
            Sharing::Alone(request, session, document) => self.alone(request, session, document),
        }
    }

    /// Whether `request` joins a shared execution (see [`fanout`]) or runs on its
    /// own. A subscription is admitted here, once (see [`admission`]): a shared
    /// one holds its places beside the execution, one on its own hands them (or
    /// the refusal) to its resolver.
    fn sharing(
        &self,
        mut request: Request,
        session: Option<Arc<Data>>,
        connection: Option<Arc<dyn SubscriptionAdmission>>,
    ) -> Sharing {
        let document = self.document(&request).ok();
        let name = request.operation_name.as_deref();
        let subscription = document.as_deref().is_some_and(|admitted| {
            admitted.operation_type(name) == Some(OperationType::Subscription)
        });
        if !subscription {
            return Sharing::Alone(request, session, document);
        }
        let shares = &self.parts.services.shares;
        let places = admission::admit(&request, session.as_deref(), connection.as_deref(), shares);
        let credential = data_of::<Credential>(&request.data)
            .or_else(|| session.as_deref().and_then(data_of::<Credential>))
            .cloned();
        let key = document.as_deref().and_then(|admitted| {
            fanout::shareable(&request, admitted.document(), credential.as_ref())
        });
        match (key, places) {
            (Some(key), Ok(places)) => {
                if let Some(credential) = credential {
                    request = request.data(credential);
                }
                Sharing::Shared(key, request, places)
            }
            // Refused, the subscription runs on its own and its resolver says why.
            (_, places) => {
                let request = request.data(PendingPlaces::new(places));
                Sharing::Alone(request, session, document)
            }
        }
    }

    /// An operation that runs on its own, its results wrapped as fan-out ones: a
    /// query answered as [`GatewaySchema::answer`] answers it (from its compiled
    /// plan when it has one), anything else streamed by async-graphql.
    fn alone(
        &self,
        request: Request,
        session: Option<Arc<Data>>,
        document: Option<Arc<AdmittedDocument>>,
    ) -> BoxStream<'static, Arc<FanoutResponse>> {
        let name = request.operation_name.as_deref();
        let query = document.filter(|admitted| {
            admitted.operation_type(name) == Some(OperationType::Query) && admitted.plan().is_some()
        });
        let Some(admitted) = query else {
            return self.executed(request, session);
        };
        let schema = self.clone();
        futures::stream::once(async move {
            match schema
                .compiled(&request, &admitted, session.as_deref())
                .await
            {
                Some(compiled) => {
                    let result = Arc::new(FanoutResponse::from(compiled));
                    futures::stream::once(async move { result }).boxed()
                }
                None => schema.executed(request, session),
            }
        })
        .flatten()
        .boxed()
    }

    /// `request`'s results from async-graphql, wrapped as fan-out ones.
    fn executed(
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
        let admitted = match self.admit(&mut request) {
            Ok(admitted) => admitted,
            Err(refusal) => {
                let refused = cap_errors(Response::from_errors(vec![refusal]));
                return futures::stream::once(async { refused }).boxed();
            }
        };
        match &self.schema {
            Executable::Standalone(schema) => {
                // A first result that is not a request error validates the document,
                // as in `execute`, so a query repeated on any transport compiles.
                let mut unvalidated = Some(admitted);
                Executor::execute_stream(schema, request, session)
                    .map(move |response| {
                        let response = cap_errors(response);
                        if let Some(admitted) = unvalidated.take()
                            && !is_request_error(&response)
                        {
                            admitted.validated();
                        }
                        response
                    })
                    .boxed()
            }
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

/// The schema of `shape` with `services` attached and `limits` enforced on every operation.
pub fn build_schema(
    shape: SchemaShape,
    services: Services,
    limits: OperationLimits,
) -> GatewaySchema {
    let max_subscribers = services.registrations.pollers().max_watchers();
    let services = Arc::new(services);
    let schema = match shape {
        SchemaShape::Standalone => {
            let builder = builder(StandaloneQuery(QueryRoot));
            Executable::Standalone(with_services(builder, &services, limits).finish())
        }
        SchemaShape::Subgraph => {
            let builder = subgraph_builder();
            Executable::Subgraph(with_services(builder, &services, limits).finish())
        }
    };
    GatewaySchema {
        schema,
        limits,
        fanout: Arc::new(Fanout::new(max_subscribers)),
        parts: Arc::new(Parts {
            documents: Documents::new(),
            persisted: PersistedQueries::new(),
            services,
        }),
    }
}

/// What the schema's resolvers, its compiled queries and its subscriptions read:
/// held once, by the schema (resolvers find it in schema data, see [`services`]).
pub struct Services {
    /// The one read, watch and start path.
    pub registrations: RegistrationService,
    /// Whose Cloudflare credential a request uses.
    pub access: AccessPolicy,
    /// Each client's fair shares: lookups, open subscriptions, new credentials.
    pub shares: FairShare,
    /// The bounds of a query's lookups.
    pub query_limits: QueryLimits,
    /// Whether `startRegistration` may run.
    pub registration: RegistrationPolicy,
    /// Where compiled queries are counted.
    pub metrics: Metrics,
}

/// Attaches the services resolvers read, and the limits async-graphql enforces itself.
fn with_services<Q: ObjectType + 'static>(
    builder: SchemaBuilder<Q, MutationRoot, SubscriptionRoot>,
    services: &Arc<Services>,
    limits: OperationLimits,
) -> SchemaBuilder<Q, MutationRoot, SubscriptionRoot> {
    let builder = builder
        .data(Arc::clone(services))
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

/// The services the schema was built with (see [`build_schema`]): the resolvers'
/// one way to read schema data.
fn services<'a>(ctx: &Context<'a>) -> Result<&'a Services, GraphqlError> {
    ctx.data::<Arc<Services>>()
        .map(AsRef::as_ref)
        .map_err(|error| GraphqlError::Internal(error.message))
}

/// The Cloudflare credential a request's upstream calls use: the caller's own when
/// the transport admitted one into the request data (from HTTP headers, or from a
/// websocket `connection_init` payload via [`AccessPolicy::admit_init_payload`]) and
/// the credential mode passes it through; else the gateway's own when the mode
/// allows; else `UNAUTHENTICATED`, before any upstream call.
pub fn caller_credential<'a>(ctx: &Context<'a>) -> Result<&'a Credential, GraphqlError> {
    let access = &services(ctx)?.access;
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
