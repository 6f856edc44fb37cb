//! `tessera console`: the operator's console in a browser.
//!
//! A small web server on the operator's machine that talks to the node with
//! the operator's certificate over mutual TLS, like every other command. It
//! listens on loopback unless told otherwise, and serves only the browser
//! that opened the one-time link it prints ([`auth`]). Pages are rendered
//! on the server as plain HTML with inline CSS and a little inline script;
//! nothing is fetched from the network.
//!
//! One file per page: [`overview`], [`screen`] (with [`batch`] jobs and the
//! CSV [`report`]), [`alerts`], [`consult`], [`notices`], [`watch`],
//! [`heatmap`], [`audit`]; [`page`] holds the shared frame.

mod alerts;
mod audit;
mod auth;
mod batch;
mod consult;
mod heatmap;
mod notices;
mod overview;
mod page;
mod parties;
mod report;
mod screen;
mod watch;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tessera_proto::v1::operator_client::OperatorClient;
use tonic::transport::Channel;

use crate::client::{CliConfig, explain_call};

pub use auth::random_hex;

/// Largest upload (a batch file).
const MAX_UPLOAD: usize = 32 << 20;

/// Why the console cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error(
        "{0} is not a loopback address: the console serves loopback only; pass --allow-remote to serve other machines (put a TLS proxy in front of it)"
    )]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the console stopped: {0}")]
    Serve(std::io::Error),
    #[error("{0}")]
    Node(String),
}

/// Why a page could not be served; shown to the operator as a page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("{0}")]
    Node(String),
    #[error("{0}")]
    BadInput(String),
    #[error("this form is stale or did not come from this console; reload the page and try again")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(String),
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = match &self {
            PageError::Node(_) => StatusCode::BAD_GATEWAY,
            PageError::BadInput(_) => StatusCode::BAD_REQUEST,
            PageError::Forbidden => StatusCode::FORBIDDEN,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
        };
        let body = format!(
            "{}<p><a href=\"javascript:history.back()\">Back</a> · <a href=\"/\">Overview</a></p>",
            page::message("bad", &self.to_string())
        );
        (status, page::layout("", "Something went wrong", "", &body)).into_response()
    }
}

/// What every handler shares.
#[derive(Debug)]
pub struct ConsoleState {
    cfg: CliConfig,
    client: OperatorClient<Channel>,
    sessions: auth::Sessions,
    jobs: batch::Jobs,
}

impl ConsoleState {
    /// A client for one call (clones share the connection).
    fn op(&self) -> OperatorClient<Channel> {
        self.client.clone()
    }

    /// A failed call as the operator reads it.
    fn failed(&self, status: &tonic::Status) -> PageError {
        PageError::Node(explain_call(&self.cfg, status).to_string())
    }

    fn agency(&self) -> &str {
        &self.cfg.agency
    }
}

type Shared = axum::extract::State<Arc<ConsoleState>>;

/// A bound console, not yet serving.
pub struct Console {
    state: Arc<ConsoleState>,
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
}

impl Console {
    /// Binds `listen`, refusing a non-loopback address unless `allow_remote`.
    pub async fn bind(
        cfg: CliConfig,
        listen: SocketAddr,
        allow_remote: bool,
    ) -> Result<Self, ConsoleError> {
        if !listen.ip().is_loopback() && !allow_remote {
            return Err(ConsoleError::NotLoopback(listen));
        }
        let client = cfg
            .operator()
            .map_err(|e| ConsoleError::Node(e.to_string()))?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| ConsoleError::Listen {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(ConsoleError::Serve)?;
        Ok(Self {
            state: Arc::new(ConsoleState {
                cfg,
                client,
                sessions: auth::Sessions::new(),
                jobs: batch::Jobs::default(),
            }),
            listener,
            addr,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The one-time link that opens a session.
    pub fn url(&self) -> String {
        format!(
            "http://{}/?token={}",
            self.addr,
            self.state.sessions.token().unwrap_or_default()
        )
    }

    /// Serves until `shutdown` resolves.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ConsoleError> {
        let app = router(self.state);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ConsoleError::Serve)
    }
}

fn router(state: Arc<ConsoleState>) -> Router {
    Router::new()
        .route("/", get(overview::page))
        .route("/screen", get(screen::form).post(screen::one))
        .route("/screen/batch", post(screen::batch))
        .route("/screen/jobs/{id}", get(screen::job))
        .route("/screen/jobs/{id}/progress", get(screen::progress))
        .route("/screen/jobs/{id}/report.csv", get(report::csv))
        .route(
            "/screen/jobs/{id}/false-positive",
            post(screen::false_positive),
        )
        .route("/alerts", get(alerts::page))
        .route("/alerts/{seq}/review", post(alerts::review))
        .route("/alerts/{seq}/false-positive", post(alerts::false_positive))
        .route("/alerts/{seq}/escalate", post(alerts::escalate))
        .route("/false-positives/clear", post(alerts::clear_false_positive))
        .route("/consultations", get(consult::list))
        .route("/consultations/{id}", get(consult::show))
        .route("/consultations/{id}/{action}", post(consult::act))
        .route("/notices", get(notices::search))
        .route("/notices/{origin}/{serial}", get(notices::show))
        .route("/watch", get(watch::page).post(watch::add))
        .route("/watch/{id}/remove", post(watch::remove))
        .route("/heatmap", get(heatmap::page))
        .route("/heatmap.svg", get(heatmap::svg))
        .route("/audit", get(audit::page))
        .route("/audit/export.jsonl", get(audit::export))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        .with_state(state)
}
