//! `patrol-sim`: simulated patrol terminals for demos and load tests.
//!
//! N terminals connect to a gateway's MQTT broker, each with its own identity, walk random
//! routes around a centre point, and send reports (optionally with a generated JPEG photo),
//! SOS calls and their track at the configured rates. Each terminal subscribes to its reply
//! topic and counts what the gateway accepted or refused, and answers tasks: `received` at
//! once, `done` after `--task-done-after` seconds. With `--acked FILE` the event id of
//! every report the broker acknowledged (PUBACK) is written to FILE, one per line, so a test
//! can check that each reached the hub exactly once; should the broker lose a terminal's
//! session, that terminal stops writing there (its PUBACKs can no longer be matched to
//! messages) and `sessions_lost` in the summary says so. A summary is printed as JSON at
//! the end.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::Utc;
use clap::Parser;
use edge_gateway::patrol::intake::event_id;
use protocol::patrol::{
    Channel, LocationUpdate, PatrolReport, Presence, Reply, SosAlert, Task, TaskAck, TaskState,
    TerminalStatus, TrackPoint,
};
use protocol::{PROTOCOL_VERSION, Severity};
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS};
use url::Url;

#[derive(Parser, Debug, Clone)]
#[command(
    version,
    about = "Simulated patrol terminals (reports, SOS, tracks) over MQTT"
)]
struct Args {
    /// The broker, e.g. mqtt://127.0.0.1:1883.
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    broker: String,
    /// `id,secret` lines (as `edge-gateway terminal add` prints them); without it,
    /// `--terminals` ids connect without credentials (for brokers that allow that).
    #[arg(long)]
    credentials: Option<PathBuf>,
    /// Terminals to simulate without credentials: `{prefix}0001`, `{prefix}0002`, …
    #[arg(long, default_value_t = 1)]
    terminals: usize,
    #[arg(long, default_value = "sim-")]
    prefix: String,
    /// Centre of the patrol area, `lat,lon`.
    #[arg(long, default_value = "30.2741,120.1551")]
    center: String,
    /// Radius of the patrol area in metres.
    #[arg(long, default_value_t = 1500.0)]
    radius_m: f64,
    /// Seconds between reports of one terminal (0: none).
    #[arg(long, default_value_t = 30.0)]
    report_every: f64,
    /// Seconds between track updates of one terminal (0: none).
    #[arg(long, default_value_t = 10.0)]
    location_every: f64,
    /// Seconds between SOS calls of one terminal (0: none).
    #[arg(long, default_value_t = 0.0)]
    sos_every: f64,
    /// Approximate size of the JPEG photo attached to each report, in KiB (0: no photo).
    #[arg(long, default_value_t = 40)]
    photo_kb: usize,
    /// Stop each terminal after this many reports (0: run until --duration or Ctrl-C).
    #[arg(long, default_value_t = 0)]
    reports: u64,
    /// Seconds from receiving a task to reporting it done.
    #[arg(long, default_value_t = 5.0)]
    task_done_after: f64,
    /// Seconds to wait at the end for the broker to acknowledge what was sent.
    #[arg(long, default_value_t = 60)]
    ack_wait: u64,
    /// Stop after this many seconds (0: no limit).
    #[arg(long, default_value_t = 0.0)]
    duration: f64,
    /// Write the event id of every acknowledged report here, one per line.
    #[arg(long)]
    acked: Option<PathBuf>,
    /// Seed for routes and content.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Default)]
struct Totals {
    reports_sent: AtomicU64,
    reports_acked: AtomicU64,
    sos_sent: AtomicU64,
    locations_sent: AtomicU64,
    replies_ok: AtomicU64,
    replies_refused: AtomicU64,
    connection_errors: AtomicU64,
    /// Reconnects on which the broker had lost the session (the MQTT client then drops the
    /// messages not yet acknowledged, and PUBACKs can no longer be matched to messages).
    sessions_lost: AtomicU64,
    tasks_received: AtomicU64,
    tasks_done: AtomicU64,
}

/// Categories a grid worker reports most: manhole covers, road damage, litter, street order.
const CATEGORIES: [(&str, &str); 4] = [
    ("component:0114", "井盖破损 broken manhole cover"),
    ("component:0201", "路面塌陷 damaged road surface"),
    ("event:0101", "暴露垃圾 exposed rubbish"),
    ("event:0501", "占道经营 street vending on the road"),
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let url = Url::parse(&args.broker).with_context(|| format!("--broker {:?}", args.broker))?;
    anyhow::ensure!(url.scheme() == "mqtt", "--broker must be mqtt://host:port");
    let host = url.host_str().context("--broker has no host")?.to_owned();
    let port = url.port().unwrap_or(1883);
    let center = parse_center(&args.center)?;
    let terminals: Vec<(String, Option<String>)> = match &args.credentials {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("{}", path.display()))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let (id, secret) = l
                    .split_once(',')
                    .with_context(|| format!("{}: {l:?} is not id,secret", path.display()))?;
                Ok((id.trim().to_owned(), Some(secret.trim().to_owned())))
            })
            .collect::<anyhow::Result<_>>()?,
        None => (1..=args.terminals)
            .map(|i| (format!("{}{i:04}", args.prefix), None))
            .collect(),
    };
    anyhow::ensure!(!terminals.is_empty(), "no terminals to simulate");
    let photos = Arc::new(make_photos(args.photo_kb, args.seed));
    let acked = match &args.acked {
        Some(p) => Some(Arc::new(std::sync::Mutex::new(
            std::fs::File::create(p).with_context(|| format!("{}", p.display()))?,
        ))),
        None => None,
    };
    let totals = Arc::new(Totals::default());
    let mut tasks = Vec::new();
    for (i, (id, secret)) in terminals.into_iter().enumerate() {
        let t = Terminal {
            id,
            secret,
            host: host.clone(),
            port,
            args: args.clone(),
            center,
            photos: photos.clone(),
            totals: totals.clone(),
            acked: acked.clone(),
            rng: StdRng::seed_from_u64(args.seed.wrapping_mul(1_000_003) + i as u64),
        };
        tasks.push(tokio::spawn(t.run()));
    }
    let all = futures::future::join_all(tasks);
    if args.duration > 0.0 {
        tokio::select! {
            _ = all => {}
            _ = tokio::time::sleep(Duration::from_secs_f64(args.duration)) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    } else {
        tokio::select! {
            _ = all => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!(
        "{}",
        serde_json::json!({
            "reports_sent": get(&totals.reports_sent),
            "reports_acked": get(&totals.reports_acked),
            "sos_sent": get(&totals.sos_sent),
            "locations_sent": get(&totals.locations_sent),
            "replies_ok": get(&totals.replies_ok),
            "replies_refused": get(&totals.replies_refused),
            "connection_errors": get(&totals.connection_errors),
            "sessions_lost": get(&totals.sessions_lost),
            "tasks_received": get(&totals.tasks_received),
            "tasks_done": get(&totals.tasks_done),
        })
    );
    if let Some(f) = acked {
        f.lock().expect("acked file").flush()?;
    }
    Ok(())
}

fn parse_center(s: &str) -> anyhow::Result<(f64, f64)> {
    let (lat, lon) = s.split_once(',').context("--center must be lat,lon")?;
    Ok((lat.trim().parse()?, lon.trim().parse()?))
}

/// A few photos of a road with a dark round cover, as base64 JPEG, about `kb` KiB each.
fn make_photos(kb: usize, seed: u64) -> Vec<Vec<u8>> {
    if kb == 0 {
        return Vec::new();
    }
    let mut rng = StdRng::seed_from_u64(seed);
    // Noise makes JPEG size grow with the pixel count: about 0.5 byte a pixel at q85.
    let side = ((kb * 1024 * 2) as f64).sqrt().max(32.0) as u32;
    (0..4)
        .map(|_| {
            let (cx, cy, r) = (
                rng.random_range(side / 4..side * 3 / 4) as f32,
                rng.random_range(side / 4..side * 3 / 4) as f32,
                (side / 8) as f32,
            );
            let img = image::RgbImage::from_fn(side, side * 3 / 4, |x, y| {
                let n: u8 = rng.random_range(0..60);
                let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
                if d < r {
                    image::Rgb([30 + n / 2, 30 + n / 2, 35 + n / 2])
                } else {
                    let g = 110 + n;
                    image::Rgb([g, g, g + 5])
                }
            });
            let mut jpeg = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
                .encode_image(&img)
                .expect("encoding to memory");
            jpeg
        })
        .collect()
}

struct Terminal {
    id: String,
    secret: Option<String>,
    host: String,
    port: u16,
    args: Args,
    center: (f64, f64),
    photos: Arc<Vec<Vec<u8>>>,
    totals: Arc<Totals>,
    acked: Option<Arc<std::sync::Mutex<std::fs::File>>>,
    rng: StdRng,
}

/// One terminal's QoS 1 publishes not yet on the wire, and those not yet acknowledged.
struct Queue {
    requested: Mutex<VecDeque<Sent>>,
    /// Room for messages in flight. Kept to half the client's in-flight limit: rumqttc
    /// reuses packet ids within that limit, and a publish that lands on an id still in
    /// flight waits in a side slot that a reconnect can strand (rumqtt issue 1056).
    window: tokio::sync::Semaphore,
}

/// QoS 1 messages the MQTT client may have in flight, and the share the simulator uses.
const CLIENT_INFLIGHT: u16 = 20;
const WINDOW: usize = CLIENT_INFLIGHT as usize / 2;

impl Queue {
    /// Messages sent (or on their way) and not yet acknowledged: the window's used room.
    fn unacked(&self) -> usize {
        WINDOW - self.window.available_permits()
    }

    /// Gives back the room of `n` acknowledged (or lost) messages.
    fn release(&self, n: usize) {
        self.window.add_permits(n.min(self.unacked()));
    }
}

impl Default for Queue {
    fn default() -> Self {
        Self {
            requested: Mutex::default(),
            window: tokio::sync::Semaphore::new(WINDOW),
        }
    }
}

/// What a QoS 1 publish was, so its PUBACK can be credited.
enum Sent {
    Report(uuid::Uuid),
    Other,
}

impl Terminal {
    async fn run(mut self) {
        let mut options = MqttOptions::new(&self.id, &self.host, self.port);
        options
            .set_clean_session(false)
            .set_keep_alive(Duration::from_secs(30))
            .set_max_packet_size(16 * 1024 * 1024, 16 * 1024 * 1024)
            .set_inflight(CLIENT_INFLIGHT)
            .set_last_will(LastWill::new(
                Channel::Status.topic(&self.id),
                status(Presence::Offline),
                QoS::AtLeastOnce,
                true,
            ));
        if let Some(secret) = &self.secret {
            options.set_credentials(&self.id, secret);
        }
        let (client, eventloop) = AsyncClient::new(options, 256);
        // Publishes in the order they were requested, to match PUBACKs to messages. This
        // task is the only one that publishes, so queue order is request order.
        let queue = Arc::new(Queue::default());
        let (tasks_tx, mut tasks) = tokio::sync::mpsc::unbounded_channel();
        let poller = tokio::spawn(poll(
            eventloop,
            client.clone(),
            self.id.clone(),
            queue.clone(),
            self.totals.clone(),
            self.acked.clone(),
            tasks_tx,
        ));
        let terminal_id = self.id.clone();
        let publish = |sent: Sent, channel: Channel, body: Vec<u8>, retain: bool| {
            let (client, queue, topic) =
                (client.clone(), queue.clone(), channel.topic(&terminal_id));
            async move {
                if let Ok(permit) = queue.window.acquire().await {
                    permit.forget(); // given back when the PUBACK comes
                }
                queue.requested.lock().expect("queue lock").push_back(sent);
                client
                    .publish(topic, QoS::AtLeastOnce, retain, body)
                    .await
                    .is_ok()
            }
        };
        publish(Sent::Other, Channel::Status, status(Presence::Online), true).await;

        let a = self.args.clone();
        let mut position = self.random_point(a.radius_m);
        let every = |s: f64| (s > 0.0).then(|| Duration::from_secs_f64(s));
        let (report_every, location_every, sos_every) = (
            every(a.report_every),
            every(a.location_every),
            every(a.sos_every),
        );
        let start = tokio::time::Instant::now();
        // Spread the terminals' first messages over one period.
        let jitter = |rng: &mut StdRng, d: Option<Duration>| {
            d.map(|d| start + d.mul_f64(rng.random_range(0.0..1.0)))
        };
        let mut next_report = jitter(&mut self.rng, report_every);
        let mut next_location = jitter(&mut self.rng, location_every);
        let mut next_sos = sos_every.map(|d| start + d);
        let (mut reports, mut seq) = (0u64, 0u64);
        let mut track = Vec::new();
        let mut to_finish: Vec<(tokio::time::Instant, uuid::Uuid)> = Vec::new();
        loop {
            if a.reports > 0 && reports >= a.reports {
                break;
            }
            let next_done = to_finish.first().map(|(at, _)| *at);
            let next = [next_report, next_location, next_sos, next_done]
                .into_iter()
                .flatten()
                .min();
            // A task arriving wakes the terminal: it says at once that it has it.
            let wake = async {
                match next {
                    Some(next) => tokio::time::sleep_until(next).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = wake => {}
                task = tasks.recv() => {
                    let Some(task) = task else { break };
                    self.totals.tasks_received.fetch_add(1, Ordering::Relaxed);
                    let ack = task_ack(task.task_id, TaskState::Received, None);
                    publish(Sent::Other, Channel::Ack, ack, false).await;
                    let at = tokio::time::Instant::now() + Duration::from_secs_f64(a.task_done_after);
                    to_finish.push((at, task.task_id));
                    to_finish.sort();
                    continue;
                }
            }
            let now = tokio::time::Instant::now();
            while to_finish.first().is_some_and(|(at, _)| *at <= now) {
                let (_, task_id) = to_finish.remove(0);
                let ack = task_ack(
                    task_id,
                    TaskState::Done,
                    Some("现场已核实 checked on site (simulated)".into()),
                );
                if publish(Sent::Other, Channel::Ack, ack, false).await {
                    self.totals.tasks_done.fetch_add(1, Ordering::Relaxed);
                }
            }
            if [next_report, next_location, next_sos]
                .into_iter()
                .flatten()
                .all(|t| t > now)
            {
                continue;
            }
            position = self.step(position);
            track.push(TrackPoint {
                lat: position.0,
                lon: position.1,
                at: Utc::now(),
                accuracy_m: Some(5.0),
            });
            let now = tokio::time::Instant::now();
            seq += 1;
            if next_report.is_some_and(|t| t <= now) {
                let (body, id) = self.report(seq, position);
                if publish(Sent::Report(id), Channel::Report, body, false).await {
                    self.totals.reports_sent.fetch_add(1, Ordering::Relaxed);
                }
                reports += 1;
                next_report = report_every.map(|d| now + d);
            }
            if next_location.is_some_and(|t| t <= now) {
                let body = LocationUpdate {
                    v: PROTOCOL_VERSION,
                    msg_id: format!("l-{seq}"),
                    points: std::mem::take(&mut track),
                };
                if publish(Sent::Other, Channel::Location, to_json(&body), false).await {
                    self.totals.locations_sent.fetch_add(1, Ordering::Relaxed);
                }
                next_location = location_every.map(|d| now + d);
            }
            if next_sos.is_some_and(|t| t <= now) {
                let body = SosAlert {
                    v: PROTOCOL_VERSION,
                    msg_id: format!("s-{seq}"),
                    lat: position.0,
                    lon: position.1,
                    occurred_at: Utc::now(),
                    note: Some("需要支援 need help".into()),
                };
                if publish(Sent::Other, Channel::Sos, to_json(&body), false).await {
                    self.totals.sos_sent.fetch_add(1, Ordering::Relaxed);
                }
                next_sos = sos_every.map(|d| now + d);
            }
        }
        // Wait until every message is acknowledged, then leave cleanly.
        let waiting_since = tokio::time::Instant::now();
        while queue.unacked() > 0 {
            if waiting_since.elapsed() > Duration::from_secs(a.ack_wait) {
                tracing::warn!(
                    terminal = %self.id,
                    unacknowledged = queue.unacked(),
                    "giving up waiting for acknowledgements"
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        publish(
            Sent::Other,
            Channel::Status,
            status(Presence::Offline),
            true,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), poller).await;
    }

    fn report(&mut self, seq: u64, (lat, lon): (f64, f64)) -> (Vec<u8>, uuid::Uuid) {
        let (category, text) = CATEGORIES[self.rng.random_range(0..CATEGORIES.len())];
        let msg_id = format!("r-{seq}");
        // Each report's photo is its own file, as a camera's would be: one of the made
        // images with the terminal and message ids after its end (JPEG readers stop there).
        let photos = if self.photos.is_empty() {
            Vec::new()
        } else {
            let mut jpeg = self.photos[self.rng.random_range(0..self.photos.len())].clone();
            jpeg.extend(format!("{}/{msg_id}", self.id).bytes());
            vec![BASE64.encode(jpeg)]
        };
        let occurred_at = Utc::now();
        let report = PatrolReport {
            v: PROTOCOL_VERSION,
            msg_id: msg_id.clone(),
            category: category
                .parse()
                .expect("the simulator's categories are valid"),
            description: format!("{text} ({})", self.id),
            lat,
            lon,
            area_code: None,
            grid: None,
            occurred_at,
            severity: Some(if self.rng.random_bool(0.2) {
                Severity::High
            } else {
                Severity::Medium
            }),
            photos,
        };
        let id = event_id(&self.id, Channel::Report, &msg_id, occurred_at);
        (to_json(&report), id)
    }

    fn random_point(&mut self, radius_m: f64) -> (f64, f64) {
        let (r, a) = (
            radius_m * self.rng.random_range(0.0f64..1.0).sqrt(),
            self.rng.random_range(0.0..std::f64::consts::TAU),
        );
        offset(self.center, r * a.cos(), r * a.sin())
    }

    /// A walking step of up to 15 m, kept inside the patrol area.
    fn step(&mut self, p: (f64, f64)) -> (f64, f64) {
        let next = offset(
            p,
            self.rng.random_range(-15.0..15.0),
            self.rng.random_range(-15.0..15.0),
        );
        let (dn, de) = metres_between(self.center, next);
        if (dn * dn + de * de).sqrt() > self.args.radius_m {
            p
        } else {
            next
        }
    }
}

/// Moves `p` by `north` and `east` metres.
fn offset((lat, lon): (f64, f64), north: f64, east: f64) -> (f64, f64) {
    const M_PER_DEG: f64 = 111_320.0;
    (
        lat + north / M_PER_DEG,
        lon + east / (M_PER_DEG * lat.to_radians().cos()),
    )
}

fn metres_between(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    const M_PER_DEG: f64 = 111_320.0;
    (
        (b.0 - a.0) * M_PER_DEG,
        (b.1 - a.1) * M_PER_DEG * a.0.to_radians().cos(),
    )
}

fn task_ack(task_id: uuid::Uuid, state: TaskState, note: Option<String>) -> Vec<u8> {
    to_json(&TaskAck {
        v: PROTOCOL_VERSION,
        task_id,
        state,
        at: Utc::now(),
        note,
    })
}

fn status(state: Presence) -> Vec<u8> {
    to_json(&TerminalStatus {
        v: PROTOCOL_VERSION,
        state,
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("simulator messages serialise")
}

/// Polls one terminal's connection: subscribes to its downlink after each connect, credits
/// PUBACKs and counts replies.
async fn poll(
    mut eventloop: EventLoop,
    client: AsyncClient,
    id: String,
    queue: Arc<Queue>,
    totals: Arc<Totals>,
    acked: Option<Arc<std::sync::Mutex<std::fs::File>>>,
    tasks: tokio::sync::mpsc::UnboundedSender<Task>,
) {
    let mut in_flight: HashMap<u16, Sent> = HashMap::new();
    let mut backoff = Duration::from_millis(200);
    let (mut connected_before, mut exact) = (false, true);
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff = Duration::from_millis(200);
                if connected_before && !ack.session_present {
                    totals.sessions_lost.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(terminal = %id, "the broker lost the session: unacknowledged messages are gone");
                    in_flight.clear();
                    queue.requested.lock().expect("queue lock").clear();
                    queue.release(WINDOW);
                    exact = false;
                }
                connected_before = true;
                let c = client.clone();
                let topics = [Channel::Reply, Channel::Task]
                    .map(|ch| rumqttc::SubscribeFilter::new(ch.topic(&id), QoS::AtLeastOnce));
                tokio::spawn(async move { c.subscribe_many(topics).await });
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) if pkid != 0 => {
                // A first send takes the next requested message; a resend keeps its own.
                if !in_flight.contains_key(&pkid)
                    && let Some(s) = queue.requested.lock().expect("queue lock").pop_front()
                {
                    in_flight.insert(pkid, s);
                }
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                queue.release(1);
                if let Some(Sent::Report(event)) = in_flight.remove(&ack.pkid) {
                    totals.reports_acked.fetch_add(1, Ordering::Relaxed);
                    if let Some(f) = acked.as_ref().filter(|_| exact) {
                        let _ = writeln!(f.lock().expect("acked file"), "{event}");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == Channel::Task.topic(&id) => {
                match serde_json::from_slice::<Task>(&p.payload) {
                    Ok(task) => {
                        tracing::info!(terminal = %id, task = %task.task_id, title = %task.title, "task received");
                        let _ = tasks.send(task);
                    }
                    Err(e) => tracing::warn!(terminal = %id, error = %e, "an unreadable task"),
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if let Ok(reply) = serde_json::from_slice::<Reply>(&p.payload) {
                    let counter = if reply.ok {
                        &totals.replies_ok
                    } else {
                        &totals.replies_refused
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    if !reply.ok {
                        tracing::warn!(terminal = %id, ?reply, "the gateway refused a message");
                    }
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
            Ok(_) => {}
            Err(e) => {
                totals.connection_errors.fetch_add(1, Ordering::Relaxed);
                tracing::info!(terminal = %id, error = %e, "connection lost; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
