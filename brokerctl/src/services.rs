//! `brokerctl services`: list services, describe one, watch changes, or register an
//! instance and keep it alive like a sidecar.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use client::{Client, ClientError, Registration, RegistryEvent, ServiceWatch};
use serde_json::json;

use crate::follow::{self, Outage};
use crate::table::Table;

/// Arguments of `services`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServicesArgs {
    #[command(subcommand)]
    action: Option<ServicesAction>,
    /// Service to describe (without a name: list all services).
    name: Option<String>,
}

/// What to do.
#[derive(Debug, Subcommand)]
enum ServicesAction {
    /// Print registrations, expiries and deregistrations as they happen.
    Watch {
        /// Only this service.
        name: Option<String>,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
        /// Stop after this many milliseconds without an event.
        #[arg(long = "timeout-ms", value_name = "MS")]
        timeout_ms: Option<u64>,
    },
    /// Register an instance and heartbeat it until stopped (SIGINT or SIGTERM), then
    /// deregister it.
    Register {
        /// Service name.
        name: String,
        /// Required: the instance's address, HOST:PORT, that the service's clients
        /// connect to. Give it as --addr after `register` (the broker's address then
        /// goes before `services`, or in BROKER_ADDR); --instance-addr is the same
        /// option under its own name.
        #[arg(long = "instance-addr", value_name = "HOST:PORT")]
        instance_addr: Option<String>,
        /// Expire the instance this long after its last heartbeat.
        #[arg(long = "ttl-ms", default_value_t = 10_000)]
        ttl_ms: u64,
        /// Tags, `key=value`; repeatable.
        #[arg(long = "tag", value_parser = crate::parse_key_value)]
        tags: Vec<(String, String)>,
        /// Instance id (default: `<hostname-ish>-<pid>`).
        #[arg(long)]
        id: Option<String>,
    },
}

/// Refuses, before connecting, arguments `services` cannot run with: `register`
/// without the instance's address (clap would name it `--instance-addr`, which the
/// user never typed).
pub fn check(args: &ServicesArgs) -> Result<(), String> {
    match &args.action {
        Some(ServicesAction::Register {
            name,
            instance_addr: None,
            ..
        }) => Err(format!(
            "services register needs the instance's address: --addr HOST:PORT after \
             `register`, e.g. `brokerctl services register {name} --addr 10.0.0.7:8080` \
             (the broker's address goes before `services`, or in BROKER_ADDR)"
        )),
        _ => Ok(()),
    }
}

/// Runs `services`.
pub async fn run(client: &Client, args: ServicesArgs, json: bool) -> anyhow::Result<ExitCode> {
    match (args.action, args.name) {
        (
            Some(ServicesAction::Watch {
                name,
                count,
                timeout_ms,
            }),
            _,
        ) => watch(client, name, count, timeout_ms, json).await,
        (
            Some(ServicesAction::Register {
                name,
                instance_addr,
                ttl_ms,
                tags,
                id,
            }),
            _,
        ) => {
            let addr = instance_addr.unwrap_or_default();
            debug_assert!(!addr.is_empty(), "refused by `check` before connecting");
            register(client, name, addr, ttl_ms, tags, id).await
        }
        (None, Some(name)) => describe(client, &name, json).await,
        (None, None) => list(client, json).await,
    }
}

async fn list(client: &Client, json: bool) -> anyhow::Result<ExitCode> {
    let services = client.list_services().await?;
    if json {
        let value: Vec<_> = services
            .iter()
            .map(|s| json!({ "service": s.service, "instances": s.instances }))
            .collect();
        outln!("{}", serde_json::Value::Array(value))?;
    } else {
        let mut table = Table::new(&["SERVICE", "INSTANCES"]);
        for s in &services {
            table.row(vec![s.service.clone(), s.instances.to_string()]);
        }
        out!("{}", table.render())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn tags_text(tags: &[client::protocol::ops::topic::ConfigEntry]) -> String {
    let parts: Vec<String> = tags
        .iter()
        .map(|t| format!("{}={}", t.key, t.value))
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(",")
    }
}

async fn describe(client: &Client, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    let instances = client.discover(name, &[]).await?;
    if json {
        let value: Vec<_> = instances
            .iter()
            .map(|i| {
                json!({
                    "instance_id": i.instance_id,
                    "address": i.address,
                    "tags": i.tags.iter().map(|t| json!({"key": t.key, "value": t.value})).collect::<Vec<_>>(),
                    "status": "healthy",
                    "ttl_ms": i.ttl_ms,
                    "since_heartbeat_ms": i.since_heartbeat_ms,
                })
            })
            .collect();
        outln!("{}", serde_json::Value::Array(value))?;
    } else {
        let mut table = Table::new(&["INSTANCE", "ADDRESS", "TAGS", "STATUS", "LAST_HEARTBEAT"]);
        for i in &instances {
            table.row(vec![
                i.instance_id.clone(),
                i.address.clone(),
                tags_text(&i.tags),
                "healthy".into(),
                format!("{:.1}s ago", i.since_heartbeat_ms as f64 / 1000.0),
            ]);
        }
        out!("{}", table.render())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn event_line(event: &RegistryEvent, json: bool) -> String {
    let (kind, service, instance, at_ms, detail) = match event {
        RegistryEvent::Registered {
            service,
            instance_id,
            address,
            at_ms,
            ..
        } => ("registered", service, instance_id, at_ms, address.clone()),
        RegistryEvent::Heartbeat {
            service,
            instance_id,
            at_ms,
        } => ("heartbeat", service, instance_id, at_ms, String::new()),
        RegistryEvent::Expired {
            service,
            instance_id,
            at_ms,
        } => ("expired", service, instance_id, at_ms, String::new()),
        RegistryEvent::Deregistered {
            service,
            instance_id,
            at_ms,
        } => ("deregistered", service, instance_id, at_ms, String::new()),
    };
    if json {
        json!({ "event": kind, "service": service, "instance_id": instance, "at_ms": at_ms, "address": detail }).to_string()
    } else {
        format!("{kind} {service}/{instance} {detail}")
            .trim_end()
            .to_string()
    }
}

async fn watch(
    client: &Client,
    name: Option<String>,
    count: Option<u64>,
    timeout_ms: Option<u64>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut watch = client.watch_services(name.as_deref()).await?;
    let mut seen = 0u64;
    let stop = follow::stop_requested();
    tokio::pin!(stop);
    let mut outage = Outage::new(client.addr());
    while count.is_none_or(|n| seen < n) {
        let next = async {
            let next = next_event(&mut watch, &mut outage);
            match timeout_ms {
                Some(ms) => tokio::time::timeout(Duration::from_millis(ms), next)
                    .await
                    .ok(),
                None => Some(next.await),
            }
        };
        let event = tokio::select! {
            event = next => match event { Some(event) => event?, None => break },
            () = &mut stop => break,
        };
        outln!("{}", event_line(&event, json))?;
        seen += 1;
    }
    Ok(ExitCode::SUCCESS)
}

/// The next registry event, riding out a broker restart: the watch keeps its
/// position in `__registry` across failed reads, so no event is missed or repeated.
/// Cancel-safe.
async fn next_event(
    watch: &mut ServiceWatch,
    outage: &mut Outage,
) -> Result<RegistryEvent, ClientError> {
    loop {
        match watch.next().await {
            Ok(event) => {
                outage.over();
                return Ok(event);
            }
            Err(e) if e.is_connection_error() => outage.wait(&e).await,
            Err(e) => return Err(e),
        }
    }
}

async fn register(
    client: &Client,
    name: String,
    addr: String,
    ttl_ms: u64,
    tags: Vec<(String, String)>,
    id: Option<String>,
) -> anyhow::Result<ExitCode> {
    let instance_id = id.unwrap_or_else(|| format!("{name}-{}", std::process::id()));
    let handle = client
        .register_instance(Registration {
            service: name.clone(),
            instance_id: instance_id.clone(),
            address: addr,
            tags,
            ttl: Duration::from_millis(ttl_ms),
        })
        .await?;
    outln!("registered {name}/{instance_id}; heartbeating until stopped")?;
    follow::stop_requested().await;
    handle.close().await?;
    outln!("deregistered {name}/{instance_id}")?;
    Ok(ExitCode::SUCCESS)
}
