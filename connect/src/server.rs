//! The gRPC service `spark.connect.SparkConnectService` over one fairway
//! session: every Spark Connect session is an isolated client of it (own
//! settings, temporary views and pool), all share its tables and slots.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use fairway_engine::Session;
use futures::Stream;
use log::{info, warn};
use tonic::{Request, Response, Status, Streaming};

use crate::conf::{POOL_KEY, POOL_TAG_PREFIX, unknown_pool_warning};
use crate::error::{Result, SparkError};
use crate::execute::Job;
use crate::proto::{
    self, analyze_plan_request as apr, analyze_plan_response as apres, config_request,
    spark_connect_service_server::{SparkConnectService, SparkConnectServiceServer},
};
use crate::relation::Planner;
use crate::session::{ClientSession, Operation, Outcome, Sessions};
use crate::show::tree_string;
use crate::types::{parse_schema, schema_ddl, spark_arrow_schema, spark_schema};

/// The Spark version this server speaks (its `.proto` files' version).
pub const SPARK_VERSION: &str = "4.2.0";

/// Largest message the server takes (a `createDataFrame` of a big frame
/// arrives in one).
const MAX_MESSAGE: usize = (2 << 30) - 1;

/// How `fairway connect` serves.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Requests must carry `authorization: Bearer <token>`.
    pub token: Option<String>,
}

/// The service.
pub struct Connect {
    engine: Session,
    sessions: Sessions,
    options: ConnectOptions,
    default_pool: String,
    /// Pools whose "not in the allocation file" warning was logged.
    warned_pools: Mutex<HashSet<String>>,
}

type Stream_ =
    Pin<Box<dyn Stream<Item = std::result::Result<proto::ExecutePlanResponse, Status>> + Send>>;

impl Connect {
    pub fn new(engine: Session, options: ConnectOptions) -> Self {
        let default_pool = engine.pool();
        Self {
            engine,
            sessions: Sessions::default(),
            options,
            default_pool,
            warned_pools: Mutex::default(),
        }
    }

    /// The warning for a pool the allocation file does not define, logged
    /// the first time the pool is named.
    fn check_pool(&self, pool: &str) -> Option<String> {
        let warning = unknown_pool_warning(&self.engine, pool)?;
        let mut warned = self.warned_pools.lock().expect("warned pools lock");
        if warned.insert(pool.to_string()) {
            warn!("{warning}");
        }
        Some(warning)
    }

    /// The tonic service, ready to add to a server.
    pub fn into_service(self) -> SparkConnectServiceServer<Connect> {
        SparkConnectServiceServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    fn check_token<T>(&self, request: &Request<T>) -> std::result::Result<(), Status> {
        let Some(token) = &self.options.token else {
            return Ok(());
        };
        let given = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given == Some(token.as_str()) {
            Ok(())
        } else {
            Err(Status::unauthenticated(
                "fairway connect: this server needs a token: sc://HOST:PORT/;token=TOKEN",
            ))
        }
    }

    /// The session a request names, created on first use.
    fn session(
        &self,
        session_id: &str,
        user: Option<&proto::UserContext>,
        observed: Option<&String>,
    ) -> std::result::Result<Arc<ClientSession>, Status> {
        let user_id = user.map(|u| u.user_id.as_str()).unwrap_or_default();
        let (session, created) = self
            .sessions
            .get_or_create(session_id, user_id, || {
                let client = self.engine.isolated_client_with(crate::functions::planners);
                crate::functions::register(client.context());
                client
            })
            .map_err(|e| e.to_status(None))?;
        if created {
            info!(
                "session {session_id} opened (user '{user_id}'); {} open",
                self.sessions.count()
            );
        }
        if let Some(observed) = observed
            && !observed.is_empty()
            && *observed != session.server_side_id
        {
            return Err(SparkError::invalid_handle(
                "SESSION_CHANGED",
                format!("The existing Spark server driver instance has restarted; reconnect (session {session_id})."),
            )
            .to_status(None));
        }
        Ok(session)
    }

    /// The request, once its token is checked, and its session.
    fn open<T: SessionRequest>(
        &self,
        request: Request<T>,
    ) -> std::result::Result<(T, Arc<ClientSession>), Status> {
        self.check_token(&request)?;
        let req = request.into_inner();
        let (id, user, observed) = req.ids();
        let session = self.session(id, user, observed)?;
        Ok((req, session))
    }

    /// The engine client an operation runs on: the session's, in the pool
    /// that a `spark.scheduler.pool=NAME` tag names, else the session's.
    fn operation_engine(
        &self,
        session: &ClientSession,
        tags: &[String],
    ) -> Result<(Session, String)> {
        let tagged = tags
            .iter()
            .rev()
            .find_map(|t| t.strip_prefix(POOL_TAG_PREFIX))
            .map(str::to_string);
        let pool = tagged
            .or_else(|| {
                session
                    .conf
                    .lock()
                    .expect("conf lock")
                    .pool()
                    .map(str::to_string)
            })
            .unwrap_or_else(|| self.default_pool.clone());
        self.check_pool(&pool);
        Ok((session.engine.with_pool(&pool)?, pool))
    }

    fn execute_stream(op: Arc<Operation>, session: Arc<ClientSession>, from: usize) -> Stream_ {
        let state = (op, session, from, false);
        Box::pin(futures::stream::unfold(
            state,
            |(op, session, index, done)| async move {
                if done {
                    return None;
                }
                match op.response(index).await {
                    Some(Ok(r)) => Some((Ok(r), (op, session, index + 1, false))),
                    Some(Err(e)) => {
                        let status = session.status(&e);
                        Some((Err(status), (op, session, index, true)))
                    }
                    None => {
                        if !op.reattachable {
                            session.remove_operation(&op.id);
                        }
                        None
                    }
                }
            },
        ))
    }
}

/// What every session-scoped request carries: the session, the user, and
/// the server-side session id the client saw last.
trait SessionRequest {
    fn ids(&self) -> (&str, Option<&proto::UserContext>, Option<&String>);
}

macro_rules! session_requests {
    ($($request:ty),* $(,)?) => {
        $(impl SessionRequest for $request {
            fn ids(&self) -> (&str, Option<&proto::UserContext>, Option<&String>) {
                (
                    &self.session_id,
                    self.user_context.as_ref(),
                    self.client_observed_server_side_session_id.as_ref(),
                )
            }
        })*
    };
}

session_requests!(
    proto::ExecutePlanRequest,
    proto::AnalyzePlanRequest,
    proto::ConfigRequest,
    proto::InterruptRequest,
    proto::ReattachExecuteRequest,
    proto::ReleaseExecuteRequest,
    proto::FetchErrorDetailsRequest,
);

fn tags_text(tags: &[String]) -> String {
    format!("[{}]", tags.join(","))
}

#[tonic::async_trait]
impl SparkConnectService for Connect {
    type ExecutePlanStream = Stream_;

    async fn execute_plan(
        &self,
        request: Request<proto::ExecutePlanRequest>,
    ) -> std::result::Result<Response<Self::ExecutePlanStream>, Status> {
        let (req, session) = self.open(request)?;
        let reattachable = req.request_options.iter().any(|o| {
            matches!(
                &o.request_option,
                Some(proto::execute_plan_request::request_option::RequestOption::ReattachOptions(r))
                    if r.reattachable
            )
        });
        let op_id = match &req.operation_id {
            Some(id) if !id.is_empty() => {
                if uuid::Uuid::parse_str(id).is_err() {
                    return Err(session.status(&SparkError::invalid_handle(
                        "FORMAT",
                        format!("The operation id '{id}' is not a UUID."),
                    )));
                }
                id.clone()
            }
            _ => uuid::Uuid::new_v4().to_string(),
        };
        let op = Arc::new(Operation::new(
            op_id.clone(),
            req.tags.clone(),
            reattachable,
        ));
        session
            .add_operation(Arc::clone(&op))
            .map_err(|e| session.status(&e))?;
        let (engine, pool) = self
            .operation_engine(&session, &req.tags)
            .map_err(|e| session.status(&e))?;
        let what = plan_summary(req.plan.as_ref());
        info!(
            "ExecutePlan session={} op={op_id} pool={pool} tags={}: {what}",
            req.session_id,
            tags_text(&req.tags)
        );
        let prefix = format!("connect op={op_id} tags={}", tags_text(&req.tags));
        let work_op = Arc::clone(&op);
        let work_session = Arc::clone(&session);
        let plan = req.plan.unwrap_or_default();
        let started = Instant::now();
        let task = tokio::spawn(async move {
            let job = Job {
                session: &work_session,
                op: &work_op,
                engine,
                prefix,
            };
            let result = job.run(&plan).await;
            let elapsed = started.elapsed().as_secs_f64();
            match result {
                Ok(()) => {
                    info!("op {} done in {elapsed:.3} s", work_op.id);
                    work_op.finish(Outcome::Succeeded);
                }
                Err(e) => {
                    info!("op {} failed in {elapsed:.3} s: {e}", work_op.id);
                    work_op.finish(Outcome::Failed(e));
                }
            }
        });
        op.set_abort(task.abort_handle());
        Ok(Response::new(Self::execute_stream(op, session, 0)))
    }

    async fn analyze_plan(
        &self,
        request: Request<proto::AnalyzePlanRequest>,
    ) -> std::result::Result<Response<proto::AnalyzePlanResponse>, Status> {
        let (req, session) = self.open(request)?;
        let kind = req.analyze.as_ref().map(analyze_name).unwrap_or("none");
        info!("AnalyzePlan session={} {kind}", req.session_id);
        let result = self.analyze(&session, req.analyze).await.map_err(|e| {
            info!("AnalyzePlan session={} {kind} failed: {e}", req.session_id);
            session.status(&e)
        })?;
        Ok(Response::new(proto::AnalyzePlanResponse {
            session_id: req.session_id,
            server_side_session_id: session.server_side_id.clone(),
            result: Some(result),
        }))
    }

    async fn config(
        &self,
        request: Request<proto::ConfigRequest>,
    ) -> std::result::Result<Response<proto::ConfigResponse>, Status> {
        let (req, session) = self.open(request)?;
        let op = req.operation.and_then(|o| o.op_type);
        let (pairs, warnings) = self
            .configure(&session, op)
            .map_err(|e| session.status(&e))?;
        Ok(Response::new(proto::ConfigResponse {
            session_id: req.session_id,
            server_side_session_id: session.server_side_id.clone(),
            pairs,
            warnings,
        }))
    }

    async fn add_artifacts(
        &self,
        request: Request<Streaming<proto::AddArtifactsRequest>>,
    ) -> std::result::Result<Response<proto::AddArtifactsResponse>, Status> {
        self.check_token(&request)?;
        info!("AddArtifacts refused");
        Err(SparkError::unsupported(
            "artifacts (addArtifact, addPyFile, local relations above the cache threshold): \
             fairway connect runs SQL and DataFrame plans only",
        )
        .to_status(None))
    }

    async fn artifact_status(
        &self,
        request: Request<proto::ArtifactStatusesRequest>,
    ) -> std::result::Result<Response<proto::ArtifactStatusesResponse>, Status> {
        self.check_token(&request)?;
        let req = request.into_inner();
        let session = self.session(&req.session_id, req.user_context.as_ref(), None)?;
        let statuses = req
            .names
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    proto::artifact_statuses_response::ArtifactStatus { exists: false },
                )
            })
            .collect();
        Ok(Response::new(proto::ArtifactStatusesResponse {
            session_id: req.session_id,
            server_side_session_id: session.server_side_id.clone(),
            statuses,
        }))
    }

    async fn interrupt(
        &self,
        request: Request<proto::InterruptRequest>,
    ) -> std::result::Result<Response<proto::InterruptResponse>, Status> {
        use proto::interrupt_request::{Interrupt, InterruptType};
        let (req, session) = self.open(request)?;
        let kind =
            InterruptType::try_from(req.interrupt_type).unwrap_or(InterruptType::Unspecified);
        let chosen: Vec<Arc<Operation>> = session
            .operations()
            .into_iter()
            .filter(|op| match (kind, &req.interrupt) {
                (InterruptType::All, _) => true,
                (InterruptType::Tag, Some(Interrupt::OperationTag(tag))) => op.tags.contains(tag),
                (InterruptType::OperationId, Some(Interrupt::OperationId(id))) => op.id == *id,
                _ => false,
            })
            .collect();
        if kind == InterruptType::Unspecified {
            return Err(
                session.status(&SparkError::illegal_argument("an interrupt without a type"))
            );
        }
        let interrupted_ids: Vec<String> = chosen
            .into_iter()
            .filter(|op| op.interrupt())
            .map(|op| op.id.clone())
            .collect();
        info!(
            "Interrupt session={} {}: {} operation(s) cancelled",
            req.session_id,
            kind.as_str_name(),
            interrupted_ids.len()
        );
        Ok(Response::new(proto::InterruptResponse {
            session_id: req.session_id,
            server_side_session_id: session.server_side_id.clone(),
            interrupted_ids,
        }))
    }

    type ReattachExecuteStream = Stream_;

    async fn reattach_execute(
        &self,
        request: Request<proto::ReattachExecuteRequest>,
    ) -> std::result::Result<Response<Self::ReattachExecuteStream>, Status> {
        let (req, session) = self.open(request)?;
        info!(
            "ReattachExecute session={} op={} after={}",
            req.session_id,
            req.operation_id,
            req.last_response_id.as_deref().unwrap_or("-")
        );
        let Some(op) = session.operation(&req.operation_id) else {
            return Err(session.status(&SparkError::invalid_handle(
                "OPERATION_NOT_FOUND",
                format!("Operation {} not found.", req.operation_id),
            )));
        };
        let from = op
            .index_after(req.last_response_id.as_deref())
            .map_err(|e| session.status(&e))?;
        Ok(Response::new(Self::execute_stream(op, session, from)))
    }

    async fn release_execute(
        &self,
        request: Request<proto::ReleaseExecuteRequest>,
    ) -> std::result::Result<Response<proto::ReleaseExecuteResponse>, Status> {
        use proto::release_execute_request::Release;
        let (req, session) = self.open(request)?;
        if let Some(op) = session.operation(&req.operation_id) {
            match &req.release {
                Some(Release::ReleaseUntil(until)) => op.release_until(Some(&until.response_id)),
                _ => {
                    // All: the operation is over for the client.
                    op.interrupt();
                    op.release_until(None);
                    session.remove_operation(&op.id);
                }
            }
        }
        Ok(Response::new(proto::ReleaseExecuteResponse {
            session_id: req.session_id,
            server_side_session_id: session.server_side_id.clone(),
            operation_id: Some(req.operation_id),
        }))
    }

    async fn release_session(
        &self,
        request: Request<proto::ReleaseSessionRequest>,
    ) -> std::result::Result<Response<proto::ReleaseSessionResponse>, Status> {
        self.check_token(&request)?;
        let req = request.into_inner();
        let user_id = req
            .user_context
            .as_ref()
            .map(|u| u.user_id.as_str())
            .unwrap_or_default();
        let released = self
            .sessions
            .release(&req.session_id, user_id, req.allow_reconnect);
        info!(
            "ReleaseSession session={}{}; {} open",
            req.session_id,
            if released.is_some() { "" } else { " (unknown)" },
            self.sessions.count()
        );
        Ok(Response::new(proto::ReleaseSessionResponse {
            session_id: req.session_id,
            server_side_session_id: released
                .map(|s| s.server_side_id.clone())
                .unwrap_or_default(),
        }))
    }

    async fn fetch_error_details(
        &self,
        request: Request<proto::FetchErrorDetailsRequest>,
    ) -> std::result::Result<Response<proto::FetchErrorDetailsResponse>, Status> {
        use proto::fetch_error_details_response as fed;
        let (req, session) = self.open(request)?;
        let (root_error_idx, errors) = match session.error(&req.error_id) {
            Some(e) => (
                Some(0),
                vec![fed::Error {
                    error_type_hierarchy: e.classes.iter().map(|c| c.to_string()).collect(),
                    message: e.full_message(),
                    stack_trace: Vec::new(),
                    cause_idx: None,
                    spark_throwable: Some(fed::SparkThrowable {
                        error_class: Some(e.error_class.clone()),
                        message_parameters: Default::default(),
                        query_contexts: Vec::new(),
                        sql_state: Some(e.sql_state.clone()),
                        breaking_change_info: None,
                    }),
                }],
            ),
            None => (None, Vec::new()),
        };
        Ok(Response::new(proto::FetchErrorDetailsResponse {
            server_side_session_id: session.server_side_id.clone(),
            session_id: req.session_id,
            root_error_idx,
            errors,
        }))
    }

    async fn clone_session(
        &self,
        request: Request<proto::CloneSessionRequest>,
    ) -> std::result::Result<Response<proto::CloneSessionResponse>, Status> {
        self.check_token(&request)?;
        Err(SparkError::unsupported("cloneSession").to_status(None))
    }

    async fn get_status(
        &self,
        request: Request<proto::GetStatusRequest>,
    ) -> std::result::Result<Response<proto::GetStatusResponse>, Status> {
        self.check_token(&request)?;
        Err(SparkError::unsupported("GetStatus").to_status(None))
    }
}

fn analyze_name(a: &apr::Analyze) -> &'static str {
    match a {
        apr::Analyze::Schema(_) => "schema",
        apr::Analyze::Explain(_) => "explain",
        apr::Analyze::TreeString(_) => "tree_string",
        apr::Analyze::IsLocal(_) => "is_local",
        apr::Analyze::IsStreaming(_) => "is_streaming",
        apr::Analyze::InputFiles(_) => "input_files",
        apr::Analyze::SparkVersion(_) => "spark_version",
        apr::Analyze::DdlParse(_) => "ddl_parse",
        apr::Analyze::SameSemantics(_) => "same_semantics",
        apr::Analyze::SemanticHash(_) => "semantic_hash",
        apr::Analyze::Persist(_) => "persist",
        apr::Analyze::Unpersist(_) => "unpersist",
        apr::Analyze::GetStorageLevel(_) => "get_storage_level",
        apr::Analyze::JsonToDdl(_) => "json_to_ddl",
    }
}

fn plan_summary(plan: Option<&proto::Plan>) -> String {
    use proto::command::CommandType;
    use proto::plan::OpType;
    match plan.and_then(|p| p.op_type.as_ref()) {
        Some(OpType::Root(r)) => crate::relation::describe(r),
        Some(OpType::Command(c)) => match &c.command_type {
            Some(CommandType::SqlCommand(s)) => match &s.input {
                Some(r) => format!("sql {}", crate::relation::describe(r)),
                #[allow(deprecated)]
                None => format!("sql {}", crate::relation::one_line(&s.sql)),
            },
            Some(CommandType::WriteOperation(w)) => {
                format!("write {}", w.source.as_deref().unwrap_or("parquet"))
            }
            Some(CommandType::CreateDataframeView(v)) => format!("create temp view {}", v.name),
            Some(other) => format!("{other:?}")
                .split('(')
                .next()
                .unwrap_or("?")
                .to_string(),
            None => "command".to_string(),
        },
        Some(OpType::CompressedOperation(_)) => "compressed plan".to_string(),
        None => "empty plan".to_string(),
    }
}

impl Connect {
    async fn analyze(
        &self,
        session: &ClientSession,
        analyze: Option<apr::Analyze>,
    ) -> Result<apres::Result> {
        let engine = &session.engine;
        // Planning may run a job (CSV schema inference, `show`).
        let planner = Planner::new(
            engine,
            crate::execute::runner(engine.clone(), "connect analyze".to_string()),
            Arc::clone(&session.cache),
        );
        let relation_of = |plan: &Option<proto::Plan>| -> Result<proto::Relation> {
            match plan.as_ref().and_then(|p| p.op_type.as_ref()) {
                Some(proto::plan::OpType::Root(r)) => Ok(r.clone()),
                _ => Err(SparkError::invalid_plan("analysis needs a relation")),
            }
        };
        Ok(match analyze {
            Some(apr::Analyze::Schema(s)) => {
                let relation = relation_of(&s.plan)?;
                let df = planner.relation(&relation).await?;
                let schema = spark_arrow_schema(df.schema().as_arrow());
                apres::Result::Schema(apres::Schema {
                    schema: Some(spark_schema(&schema)),
                })
            }
            Some(apr::Analyze::TreeString(t)) => {
                let relation = relation_of(&t.plan)?;
                let df = planner.relation(&relation).await?;
                let schema = spark_arrow_schema(df.schema().as_arrow());
                apres::Result::TreeString(apres::TreeString {
                    tree_string: tree_string(&schema, t.level.unwrap_or(0).max(0) as usize),
                })
            }
            Some(apr::Analyze::Explain(e)) => {
                use apr::explain::ExplainMode;
                let relation = relation_of(&e.plan)?;
                let df = planner.relation(&relation).await?;
                let extended = !matches!(
                    ExplainMode::try_from(e.explain_mode),
                    Ok(ExplainMode::Simple) | Ok(ExplainMode::Unspecified) | Err(_)
                );
                let logical = df.logical_plan().clone();
                let optimized = df.clone().into_optimized_plan()?;
                let physical = df.create_physical_plan().await?;
                let stages = session.engine.stage_graph_text(physical)?;
                let mut text = String::new();
                if extended {
                    text.push_str(&format!(
                        "== Parsed Logical Plan ==\n{}\n\n",
                        logical.display_indent()
                    ));
                    text.push_str(&format!(
                        "== Optimized Logical Plan ==\n{}\n\n",
                        optimized.display_indent()
                    ));
                }
                text.push_str(&format!("== Physical Plan ==\n{stages}\n"));
                apres::Result::Explain(apres::Explain {
                    explain_string: text,
                })
            }
            Some(apr::Analyze::IsLocal(l)) => {
                let relation = relation_of(&l.plan)?;
                apres::Result::IsLocal(apres::IsLocal {
                    is_local: matches!(
                        relation.rel_type,
                        Some(proto::relation::RelType::LocalRelation(_))
                    ),
                })
            }
            Some(apr::Analyze::IsStreaming(_)) => apres::Result::IsStreaming(apres::IsStreaming {
                is_streaming: false,
            }),
            Some(apr::Analyze::InputFiles(f)) => {
                let relation = relation_of(&f.plan)?;
                let df = planner.relation(&relation).await?;
                apres::Result::InputFiles(apres::InputFiles {
                    files: input_files(df.logical_plan()),
                })
            }
            Some(apr::Analyze::SparkVersion(_)) => {
                apres::Result::SparkVersion(apres::SparkVersion {
                    version: SPARK_VERSION.to_string(),
                })
            }
            Some(apr::Analyze::DdlParse(d)) => {
                let schema = parse_schema(&d.ddl_string)?;
                apres::Result::DdlParse(apres::DdlParse {
                    parsed: Some(spark_schema(&schema)),
                })
            }
            Some(apr::Analyze::JsonToDdl(j)) => apres::Result::JsonToDdl(apres::JsonToDdl {
                ddl_string: schema_ddl(&parse_schema(&j.json_string)?),
            }),
            Some(apr::Analyze::SameSemantics(s)) => {
                let (ra, rb) = (relation_of(&s.target_plan)?, relation_of(&s.other_plan)?);
                let a = planner.relation(&ra).await?;
                let b = planner.relation(&rb).await?;
                let a = a.into_optimized_plan()?.display_indent().to_string();
                let b = b.into_optimized_plan()?.display_indent().to_string();
                apres::Result::SameSemantics(apres::SameSemantics { result: a == b })
            }
            Some(apr::Analyze::SemanticHash(s)) => {
                let relation = relation_of(&s.plan)?;
                let df = planner.relation(&relation).await?;
                let text = df.into_optimized_plan()?.display_indent().to_string();
                let hash = text
                    .bytes()
                    .fold(17i32, |h, b| h.wrapping_mul(31).wrapping_add(i32::from(b)));
                apres::Result::SemanticHash(apres::SemanticHash { result: hash })
            }
            Some(apr::Analyze::Persist(p)) => {
                let relation = p
                    .relation
                    .as_ref()
                    .ok_or_else(|| SparkError::invalid_plan("persist without a relation"))?;
                session.cache.persist(relation, p.storage_level.as_ref());
                apres::Result::Persist(apres::Persist {})
            }
            Some(apr::Analyze::Unpersist(u)) => {
                if let Some(relation) = &u.relation {
                    session.cache.unpersist(relation);
                }
                apres::Result::Unpersist(apres::Unpersist {})
            }
            Some(apr::Analyze::GetStorageLevel(g)) => {
                let level = session.cache.level(g.relation.as_ref());
                apres::Result::GetStorageLevel(apres::GetStorageLevel {
                    storage_level: Some(level),
                })
            }
            None => return Err(SparkError::invalid_plan("an analysis without a kind")),
        })
    }

    fn configure(
        &self,
        session: &ClientSession,
        op: Option<config_request::operation::OpType>,
    ) -> Result<(Vec<proto::KeyValue>, Vec<String>)> {
        use config_request::operation::OpType;
        let engine = &session.engine;
        let mut conf = session.conf.lock().expect("conf lock");
        let kv = |key: &str, value: Option<String>| proto::KeyValue {
            key: key.to_string(),
            value,
        };
        let mut warnings = Vec::new();
        let pairs = match op {
            Some(OpType::Set(set)) => {
                for pair in &set.pairs {
                    let value = pair.value.clone().unwrap_or_default();
                    if pair.key == crate::cache::MAX_MEMORY_KEY {
                        session.cache.set_budget(&value)?;
                    }
                    conf.set(engine, &pair.key, &value)?;
                    if pair.key == POOL_KEY
                        && let Some(warning) = self.check_pool(&value)
                    {
                        warnings.push(warning);
                    }
                }
                info!(
                    "Config session={} set {}",
                    session.session_id,
                    set.pairs
                        .iter()
                        .map(|p| p.key.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                );
                Vec::new()
            }
            Some(OpType::Get(get)) => {
                let mut out = Vec::new();
                for key in &get.keys {
                    match conf.get(engine, key) {
                        Some(v) => out.push(kv(key, Some(v))),
                        None => return Err(SparkError::conf_not_found(key)),
                    }
                }
                out
            }
            Some(OpType::GetWithDefault(g)) => g
                .pairs
                .iter()
                .map(|p| kv(&p.key, conf.get(engine, &p.key).or_else(|| p.value.clone())))
                .collect(),
            Some(OpType::GetOption(g)) => {
                g.keys.iter().map(|k| kv(k, conf.get(engine, k))).collect()
            }
            Some(OpType::GetAll(all)) => conf
                .all(engine, all.prefix.as_deref().unwrap_or(""))
                .into_iter()
                .map(|(k, v)| kv(&k, Some(v)))
                .collect(),
            Some(OpType::Unset(unset)) => {
                for key in &unset.keys {
                    conf.unset(engine, key, &self.default_pool)?;
                }
                Vec::new()
            }
            Some(OpType::IsModifiable(m)) => m
                .keys
                .iter()
                .map(|k| kv(k, Some(conf.is_modifiable(k).to_string())))
                .collect(),
            None => {
                return Err(SparkError::invalid_plan(
                    "a config request without an operation",
                ));
            }
        };
        Ok((pairs, warnings))
    }
}

/// The files the scans of `plan` read (their table locations).
fn input_files(plan: &fairway_engine::datafusion::logical_expr::LogicalPlan) -> Vec<String> {
    use fairway_engine::datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use fairway_engine::datafusion::datasource::listing::ListingTable;
    use fairway_engine::datafusion::datasource::source_as_provider;
    use fairway_engine::datafusion::logical_expr::LogicalPlan;
    let mut files = Vec::new();
    let _ = plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = source_as_provider(&scan.source)
            && let Some(listing) = provider.downcast_ref::<ListingTable>()
        {
            files.extend(listing.table_paths().iter().map(|u| u.to_string()));
        }
        Ok(TreeNodeRecursion::Continue)
    });
    files
}

/// Serves Spark Connect on `addr` until `shutdown` resolves. `ready` gets
/// the address actually bound (port 0 picks a free one). Plans are
/// planned on the calling runtime's threads and nest up to 50 relations
/// deep: give them large stacks (`fairway connect` uses 64 MiB).
pub async fn serve(
    engine: Session,
    addr: SocketAddr,
    options: ConnectOptions,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    let service = Connect::new(engine, options).into_service();
    ready(bound);
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(
            tonic::codegen::tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown,
        )
        .await?;
    Ok(())
}
