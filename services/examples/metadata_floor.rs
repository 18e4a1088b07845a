//! The floor the admin API's latency is compared with: raw rdkafka metadata calls for one
//! topic, from `concurrency` threads sharing one client (as the API shares one), for a while.
//!
//! `cargo run --release -p services --example metadata_floor -- <bootstrap> <topic> <concurrency> <seconds> [<rdkafka key>=<value>…]`
//!
//! The settings after the four arguments configure the client (a SASL_SSL cluster's
//! `security.protocol`, `sasl.username`, …).

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, topic, concurrency, seconds, settings @ ..] = args.as_slice() else {
        anyhow::bail!(
            "usage: metadata_floor <bootstrap> <topic> <concurrency> <seconds> [<key>=<value>…]"
        );
    };
    let concurrency: usize = concurrency.parse()?;
    let run = Duration::from_secs(seconds.parse()?);
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    for setting in settings {
        let Some((key, value)) = setting.split_once('=') else {
            anyhow::bail!("`{setting}` is not <rdkafka key>=<value>");
        };
        config.set(key, value);
    }
    let admin: AdminClient<DefaultClientContext> = config.create()?;
    admin
        .inner()
        .fetch_metadata(Some(topic), Duration::from_secs(5))?;
    let started = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    while started.elapsed() < run {
                        let call = Instant::now();
                        if admin
                            .inner()
                            .fetch_metadata(Some(topic), Duration::from_secs(5))
                            .is_ok()
                        {
                            mine.push(call.elapsed());
                        }
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "raw rdkafka metadata({topic}), {concurrency} threads: {:.0} calls/s, p50 {:.2} ms, p99 {:.2} ms",
        latencies.len() as f64 / elapsed,
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3
    );
    Ok(())
}
