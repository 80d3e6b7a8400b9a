//! Prometheus metrics for `/metrics`, all in one prometheus-client registry: HTTP request counts
//! and latencies by route pattern, database reachability, the engine's live actors and
//! interviews (set at each scrape from the engine's own counters), its per-turn latency
//! histograms ([`engine::latency`]) and dropped usage rows.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The actor type of a live-actor gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActorLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The matched route pattern (`/api/v1/auth/login`), never the raw path.
    pub route: String,
    pub status: u16,
}

/// The server's metrics and their registry.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_request_duration: Family<RequestLabels, Histogram>,
    pub database_up: Gauge,
    /// Live actors by type; returns to zero when interviews end.
    pub live_actors: Family<ActorLabels, Gauge>,
    pub live_interviews: Gauge,
    /// WebRTC media sessions not yet released ([`engine::transport::live_sessions`]).
    pub live_media_sessions: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("interviewcraft");
        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests served",
            http_requests.clone(),
        );
        let http_request_duration =
            Family::<RequestLabels, Histogram>::new_with_constructor(|| {
                Histogram::new([
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
            });
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            http_request_duration.clone(),
        );
        let database_up = Gauge::default();
        registry.register(
            "database_up",
            "1 when the last health check reached the database",
            database_up.clone(),
        );
        let live_actors = Family::<ActorLabels, Gauge>::default();
        registry.register(
            "live_actors",
            "Live actors by type (returns to zero when interviews end)",
            live_actors.clone(),
        );
        let live_interviews = Gauge::default();
        registry.register(
            "live_interviews",
            "Live interviews on this node",
            live_interviews.clone(),
        );
        let live_media_sessions = Gauge::default();
        registry.register(
            "live_media_sessions",
            "WebRTC media sessions (peer connections) this process still holds; above live_interviews, sessions outlive their interview",
            live_media_sessions.clone(),
        );
        engine::latency::register(&mut registry);
        Self {
            registry: Mutex::new(registry),
            http_requests,
            http_request_duration,
            database_up,
            live_actors,
            live_interviews,
            live_media_sessions,
        }
    }

    /// Registers a further metric (e.g. the engine's dropped usage rows).
    pub fn register(
        &self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .register(name, help, metric);
    }

    /// Sets the engine's gauges from its live counters (at each scrape).
    pub fn observe_engine(&self, engine: &engine::engine::EngineHandle) {
        for (kind, count) in engine::actors::live_counts() {
            self.live_actors
                .get_or_create(&ActorLabels { kind })
                .set(count);
        }
        self.live_interviews
            .set(i64::try_from(engine.live().len()).unwrap_or(i64::MAX));
        self.live_media_sessions
            .set(engine::transport::live_sessions());
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        prometheus_client::encoding::text::encode(&mut out, &registry)?;
        Ok(out)
    }
}
