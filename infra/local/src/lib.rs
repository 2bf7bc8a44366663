//! `bestchat-local`: API Gateway and Lambda emulated on a laptop. It reads the routes from
//! `infra/template.yaml`, checks JWTs as API Gateway's authorizer would, builds the payload v2
//! event and calls each function's handler in-process.

mod blobs;
pub mod config;
mod event;
mod gateway;
mod lambda_api;
mod management;
mod sockets;
mod sse;
pub mod template;
mod web;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt;
use bestchat_app::{AppState, Config};
use tokio::net::TcpListener;

use bestchat_app::auth::{DEV_TOKEN_TTL, dev_subject};
use bestchat_platform::publish::ConnectionHub;

use crate::config::LocalConfig;
use crate::gateway::Gateway;

/// A failure to start, worded for the person who ran the command.
pub type StartError = Box<dyn std::error::Error + Send + Sync>;

pub async fn run() -> Result<(), StartError> {
    let mut config = Config::from_env()?;
    let local = LocalConfig::from_env(&mut config)?;
    let state = AppState::new(config)?;
    let migrations = state.migrate().await?;
    let routes = template::http_routes(template::TEMPLATES)?;
    let gateway = Arc::new(Gateway {
        // With frames posted in process the app and the sockets share one hub; with WS_ENDPOINT
        // set, frames come back through this gateway's @connections endpoint.
        hub: state.hub.clone().unwrap_or_else(ConnectionHub::new),
        state: Arc::clone(&state),
        ws: template::ws_api(template::TEMPLATES)?,
        ws_idle_timeout: local.ws_idle_timeout,
        sockets: sockets::SocketInfo::default(),
    });
    let app = gateway::router(
        Arc::clone(&gateway),
        &routes,
        local.dev_auth,
        local.emulate_aws.clone(),
    )?
    .merge(web::router(local.web_auth.clone()))
    .merge(blobs::router(&state.config.tools.blobs));
    tokio::spawn(janitor(Arc::clone(&state), local.janitor_interval));
    let listener = TcpListener::bind(&local.addr)
        .await
        .map_err(|e| format!("cannot listen on {} (BESTCHAT_ADDR): {e}", local.addr))?;
    let addr = listener.local_addr()?;
    let applied = migrations.applied.len();
    banner(&state, &gateway, &local, addr, routes.len(), applied)?;
    // Deltas are small writes: without TCP_NODELAY, Nagle's algorithm holds each one back until
    // the previous is acknowledged, adding tens of milliseconds.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    tracing::info!("stopped");
    Ok(())
}

/// Runs the janitor on an interval, as the deployment's schedule does, through the same entry
/// point (it logs what it did).
async fn janitor(state: Arc<AppState>, interval: std::time::Duration) {
    let start = tokio::time::Instant::now() + interval;
    let mut ticks = tokio::time::interval_at(start, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = bestchat_app::janitor::run(&state).await {
            tracing::error!(error = %e, "janitor failed");
        }
    }
}

fn banner(
    state: &AppState,
    gateway: &Gateway,
    local: &LocalConfig,
    addr: SocketAddr,
    route_count: usize,
    applied: usize,
) -> Result<(), StartError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "BestChat local gateway listening on http://{addr}")?;
    for (what, adapter) in state.describe_adapters() {
        writeln!(
            out,
            "  {what}:{:pad$}{adapter}",
            "",
            pad = 13usize.saturating_sub(what.len())
        )?;
    }
    writeln!(out, "  migrations: {applied} applied now")?;
    writeln!(out, "  routes: {route_count} from infra/template.yaml")?;
    let auth = gateway.auth()?;
    writeln!(
        out,
        "  auth:   JWT, issuer {:?}, audience {:?}",
        auth.issuer(),
        auth.audience()
    )?;
    writeln!(out, "  websocket: ws://{addr}/ws?token=<JWT>")?;
    if state.config.allow_private_provider_urls {
        writeln!(
            out,
            "  provider URLs: loopback and private networks too, for a local Ollama (BESTCHAT_ALLOW_PRIVATE_PROVIDER_URLS=0 to refuse them)"
        )?;
    } else {
        writeln!(out, "  provider URLs: public addresses only")?;
    }
    if web::embedded() {
        writeln!(out, "  web client: http://{addr}/")?;
    } else {
        writeln!(
            out,
            "  web client: not built: install Node.js 20 with npm, then run the same cargo command again (the API works without it)"
        )?;
    }
    if local.emulate_aws.is_some() {
        writeln!(
            out,
            "  aws emulation: /@connections and /2015-03-31/functions, for this process's own clients only"
        )?;
    } else {
        writeln!(out, "  aws emulation: off (BESTCHAT_EMULATE_AWS=0)")?;
    }
    if local.dev_auth {
        let (subject, user_id) = dev_subject("dev").ok_or("the dev user name is invalid")?;
        let token = auth.mint(&subject, chrono::Utc::now().timestamp(), DEV_TOKEN_TTL)?;
        if local.insecure_dev_auth {
            writeln!(
                out,
                "  dev auth: ON WHERE IT IS UNSAFE (BESTCHAT_INSECURE_DEV_AUTH=1): anyone who reaches {addr} can sign in as anyone"
            )?;
        }
        writeln!(
            out,
            "  dev auth: on (POST /dev/token {{\"user\": \"alice\"}} gives a token)"
        )?;
        writeln!(out, "  dev token for user \"dev\" ({user_id}), valid 24 h:")?;
        writeln!(out, "    {token}")?;
        writeln!(out, "  try:")?;
        writeln!(
            out,
            "    curl -s -X POST -H 'Authorization: Bearer {token}' -d '{{\"title\":\"Hello\"}}' http://{addr}/api/conversations"
        )?;
        writeln!(
            out,
            "    curl -s -H 'Authorization: Bearer {token}' http://{addr}/api/conversations"
        )?;
    } else {
        writeln!(
            out,
            "  dev auth: off (set BESTCHAT_DEV_AUTH=1 to enable POST /dev/token)"
        )?;
    }
    out.flush()?;
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
