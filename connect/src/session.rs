//! Server state: the client sessions (each with its own engine client:
//! settings, temporary views, pool) and their operations, which run in the
//! background so that `Interrupt` can cancel them and a client can
//! reattach to their responses.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use fairway_engine::Session;
use tokio::sync::watch;

use crate::conf::SessionConf;
use crate::error::SparkError;
use crate::proto::ExecutePlanResponse;

/// How many failures a session keeps for `FetchErrorDetails`.
const KEPT_ERRORS: usize = 64;

/// One Spark Connect session.
pub struct ClientSession {
    pub session_id: String,
    pub user_id: String,
    /// Changes when the server restarts, so a client notices.
    pub server_side_id: String,
    /// This session's engine client: its settings and temporary views.
    pub engine: Session,
    pub conf: Mutex<SessionConf>,
    /// Frames kept by `df.cache()` / `persist()`.
    pub cache: Arc<crate::cache::Cache>,
    operations: Mutex<HashMap<String, Arc<Operation>>>,
    errors: Mutex<VecDeque<(String, SparkError)>>,
}

impl ClientSession {
    pub fn new(session_id: &str, user_id: &str, engine: Session) -> Self {
        Self {
            session_id: session_id.to_string(),
            user_id: user_id.to_string(),
            server_side_id: uuid::Uuid::new_v4().to_string(),
            engine,
            conf: Mutex::default(),
            cache: Arc::default(),
            operations: Mutex::default(),
            errors: Mutex::default(),
        }
    }

    /// Keeps `error` for `FetchErrorDetails` and returns its id.
    pub fn remember_error(&self, error: &SparkError) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let mut errors = self.errors.lock().expect("errors lock");
        if errors.len() >= KEPT_ERRORS {
            errors.pop_front();
        }
        errors.push_back((id.clone(), error.clone()));
        id
    }

    pub fn error(&self, id: &str) -> Option<SparkError> {
        self.errors
            .lock()
            .expect("errors lock")
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, e)| e.clone())
    }

    /// The status a failure goes back as, remembered for its details.
    pub fn status(&self, error: &SparkError) -> tonic::Status {
        let id = self.remember_error(error);
        error.to_status(Some(&id))
    }

    pub fn add_operation(&self, op: Arc<Operation>) -> Result<(), SparkError> {
        let mut ops = self.operations.lock().expect("operations lock");
        if ops.contains_key(&op.id) {
            return Err(SparkError::invalid_handle(
                "OPERATION_ALREADY_EXISTS",
                format!("Operation {} already exists.", op.id),
            ));
        }
        ops.insert(op.id.clone(), op);
        Ok(())
    }

    pub fn operation(&self, id: &str) -> Option<Arc<Operation>> {
        self.operations
            .lock()
            .expect("operations lock")
            .get(id)
            .cloned()
    }

    pub fn remove_operation(&self, id: &str) -> Option<Arc<Operation>> {
        self.operations.lock().expect("operations lock").remove(id)
    }

    pub fn operations(&self) -> Vec<Arc<Operation>> {
        self.operations
            .lock()
            .expect("operations lock")
            .values()
            .cloned()
            .collect()
    }
}

/// Where an operation is.
#[derive(Debug, Clone)]
pub enum Outcome {
    Running,
    Succeeded,
    Failed(SparkError),
}

struct Buffer {
    /// Responses not yet released; `responses[0]` has index `first`.
    responses: VecDeque<ExecutePlanResponse>,
    first: usize,
    /// The index of every response id produced so far.
    index_of: HashMap<String, usize>,
    outcome: Outcome,
}

/// One `ExecutePlan`: its responses (kept until the client releases them),
/// its tags, and a handle to cancel the work.
pub struct Operation {
    pub id: String,
    pub tags: Vec<String>,
    pub reattachable: bool,
    buffer: Mutex<Buffer>,
    changed: watch::Sender<usize>,
    abort: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Operation {
    pub fn new(id: String, tags: Vec<String>, reattachable: bool) -> Self {
        Self {
            id,
            tags,
            reattachable,
            buffer: Mutex::new(Buffer {
                responses: VecDeque::new(),
                first: 0,
                index_of: HashMap::new(),
                outcome: Outcome::Running,
            }),
            changed: watch::channel(0).0,
            abort: Mutex::new(None),
        }
    }

    pub fn set_abort(&self, handle: tokio::task::AbortHandle) {
        *self.abort.lock().expect("abort lock") = Some(handle);
    }

    pub fn push(&self, response: ExecutePlanResponse) {
        {
            let mut b = self.buffer.lock().expect("buffer lock");
            let index = b.first + b.responses.len();
            b.index_of.insert(response.response_id.clone(), index);
            b.responses.push_back(response);
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// Ends the operation (the first outcome wins).
    pub fn finish(&self, outcome: Outcome) {
        {
            let mut b = self.buffer.lock().expect("buffer lock");
            if !matches!(b.outcome, Outcome::Running) {
                return;
            }
            b.outcome = outcome;
        }
        self.changed.send_modify(|n| *n += 1);
    }

    pub fn is_running(&self) -> bool {
        matches!(
            self.buffer.lock().expect("buffer lock").outcome,
            Outcome::Running
        )
    }

    /// Cancels the work if it still runs; returns whether it did.
    pub fn interrupt(&self) -> bool {
        if !self.is_running() {
            return false;
        }
        if let Some(handle) = self.abort.lock().expect("abort lock").take() {
            handle.abort();
        }
        self.finish(Outcome::Failed(SparkError::cancelled()));
        true
    }

    /// The index after response `id` (0 for none); an error if the server
    /// never sent it.
    pub fn index_after(&self, id: Option<&str>) -> Result<usize, SparkError> {
        let Some(id) = id else { return Ok(0) };
        let b = self.buffer.lock().expect("buffer lock");
        b.index_of.get(id).map(|i| i + 1).ok_or_else(|| {
            SparkError::invalid_handle(
                "OPERATION_NOT_FOUND",
                format!("Response {id} of operation {} is unknown.", self.id),
            )
        })
    }

    /// Drops the responses up to and including `id` (all for `None`).
    pub fn release_until(&self, id: Option<&str>) {
        let mut b = self.buffer.lock().expect("buffer lock");
        let until = match id {
            Some(id) => match b.index_of.get(id) {
                Some(i) => i + 1,
                None => return,
            },
            None => b.first + b.responses.len(),
        };
        while b.first < until && !b.responses.is_empty() {
            b.responses.pop_front();
            b.first += 1;
        }
    }

    /// The response at `index`, waiting for it; `None` when the operation
    /// has ended with nothing more; an error if it failed or the response
    /// was released.
    pub async fn response(&self, index: usize) -> Option<Result<ExecutePlanResponse, SparkError>> {
        let mut changes = self.changed.subscribe();
        loop {
            {
                let b = self.buffer.lock().expect("buffer lock");
                if index < b.first {
                    return Some(Err(SparkError::invalid_handle(
                        "OPERATION_NOT_FOUND",
                        format!("Responses of operation {} were released.", self.id),
                    )));
                }
                if let Some(r) = b.responses.get(index - b.first) {
                    return Some(Ok(r.clone()));
                }
                match &b.outcome {
                    Outcome::Running => {}
                    Outcome::Succeeded => return None,
                    Outcome::Failed(e) => return Some(Err(e.clone())),
                }
            }
            if changes.changed().await.is_err() {
                return None;
            }
        }
    }
}

/// Every session of the server.
#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Arc<ClientSession>>>,
    closed: Mutex<HashSet<String>>,
}

impl Sessions {
    fn key(user_id: &str, session_id: &str) -> String {
        format!("{user_id}\u{0}{session_id}")
    }

    /// The session, created on first use.
    pub fn get_or_create(
        &self,
        session_id: &str,
        user_id: &str,
        make_engine: impl FnOnce() -> Session,
    ) -> Result<(Arc<ClientSession>, bool), SparkError> {
        if uuid::Uuid::parse_str(session_id).is_err() {
            return Err(SparkError::invalid_handle(
                "FORMAT",
                format!("The session id '{session_id}' is not a UUID."),
            ));
        }
        let key = Self::key(user_id, session_id);
        if self.closed.lock().expect("closed lock").contains(&key) {
            return Err(SparkError::invalid_handle(
                "SESSION_CLOSED",
                format!("Session {session_id} was closed."),
            ));
        }
        let mut open = self.open.lock().expect("sessions lock");
        if let Some(s) = open.get(&key) {
            return Ok((Arc::clone(s), false));
        }
        let session = Arc::new(ClientSession::new(session_id, user_id, make_engine()));
        open.insert(key, Arc::clone(&session));
        Ok((session, true))
    }

    pub fn get(&self, session_id: &str, user_id: &str) -> Option<Arc<ClientSession>> {
        self.open
            .lock()
            .expect("sessions lock")
            .get(&Self::key(user_id, session_id))
            .cloned()
    }

    /// Closes a session: its operations are interrupted.
    pub fn release(
        &self,
        session_id: &str,
        user_id: &str,
        allow_reconnect: bool,
    ) -> Option<Arc<ClientSession>> {
        let key = Self::key(user_id, session_id);
        let session = self.open.lock().expect("sessions lock").remove(&key)?;
        for op in session.operations() {
            op.interrupt();
        }
        if !allow_reconnect {
            self.closed.lock().expect("closed lock").insert(key);
        }
        Some(session)
    }

    pub fn count(&self) -> usize {
        self.open.lock().expect("sessions lock").len()
    }
}
