//! Engine benchmark: synthetic graphs of 1k and 10k resources in several shapes, every
//! provider operation taking a fixed simulated latency (the in-process test provider).
//!
//! For each case it prints the plan time (all-create, no-op, and a no-op plan with one target,
//! with the number of resources that target reaches), the apply wall time, the
//! critical-path lower bound (longest dependency chain x latency, or the parallelism bound's
//! own floor when that is larger), their ratio, the same ratio against the provider calls'
//! *measured* mean duration (the simulated latency's own timer overshoot removed, so what is
//! left is the engine's overhead), and the peak resident memory. Each case runs in a child
//! process so its peak memory is its own.
//!
//! It also prints how long loading the stack's state takes of the no-op plan (`(load)`), and
//! the state's size on disk (snapshot and journal). The no-op plans and the loading are each
//! the median of three runs.
//!
//! Run: `cargo bench -p iac-core --bench engine` (add `-- chain` to run only matching cases,
//! or `-- chain:1000:0:10` for one case given as shape:nodes:latency_ms:parallelism;
//! `-- --large` adds the 100,000-resource cases, a minute each, about 1.5 GiB).
//! `BENCH_NOOP_PLANS=N` makes a case plan N no-op plans after its apply and nothing else:
//! the workload to put under a profiler (`perf record`, `heaptrack`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark fails loudly

// The allocator the project's programs use (`iac_cli::Allocator`); the `system-allocator`
// feature measures the engine on the system's instead.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iac_core::testing::TestProvider;
use iac_core::{
    ApplyOptions, Engine, FileBackend, Inputs, PlanOptions, Program, Providers, Resource,
    ResourceOptions, Stack, Targets,
};

#[derive(Clone)]
struct Case {
    shape: String,
    size: usize,
    latency_ms: u64,
    parallelism: usize,
}

/// The standard cases. Latencies are far below real cloud calls (50 ms to minutes) to keep
/// the run short; the zero-latency rows show the engine's own absolute overhead, from which
/// the ratio at any other latency follows.
fn cases(large: bool) -> Vec<Case> {
    let mut cases = vec![
        Case::new("wide", 1_000, 200, 1_000),
        Case::new("wide", 10_000, 1_000, 10_000),
        Case::new("chain", 1_000, 5, 10),
        Case::new("chain", 10_000, 5, 10),
        Case::new("layered", 1_000, 50, 1_000),
        Case::new("layered", 10_000, 200, 10_000),
        Case::new("wide", 1_000, 5, 10),
        Case::new("wide", 10_000, 0, 10_000),
        Case::new("chain", 10_000, 0, 10),
        Case::new("layered", 10_000, 0, 10_000),
    ];
    if large {
        cases.extend([
            Case::new("wide", 100_000, 0, 100_000),
            Case::new("chain", 100_000, 0, 10),
            Case::new("layered", 100_000, 0, 100_000),
        ]);
    }
    cases
}

impl Case {
    fn new(shape: &str, size: usize, latency_ms: u64, parallelism: usize) -> Self {
        Self {
            shape: shape.to_owned(),
            size,
            latency_ms,
            parallelism,
        }
    }

    fn spec(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.shape, self.size, self.latency_ms, self.parallelism
        )
    }

    fn parse(spec: &str) -> Option<Self> {
        let mut parts = spec.split(':');
        let shape = parts.next()?;
        let size = parts.next()?.parse().ok()?;
        let latency_ms = parts.next()?.parse().ok()?;
        let parallelism = parts.next()?.parse().ok()?;
        ["wide", "chain", "layered"]
            .contains(&shape)
            .then(|| Self::new(shape, size, latency_ms, parallelism))
    }
}

fn thing(stack: &mut Stack, name: String, inputs: Inputs) -> Resource {
    stack.register("bench:Thing", &name, inputs, ResourceOptions::default())
}

/// The program and its depth (resources on the longest dependency chain).
fn program(shape: &str, size: usize) -> (Program, usize) {
    let mut s = Stack::new("bench");
    let depth = match shape {
        "wide" => {
            for i in 0..size {
                thing(&mut s, format!("r{i}"), Inputs::new().with("index", i));
            }
            1
        }
        "chain" => {
            let mut prev = thing(&mut s, "r0".into(), Inputs::new().with("index", 0));
            for i in 1..size {
                let inputs = Inputs::new().with("index", i).with("prev", prev.id());
                prev = thing(&mut s, format!("r{i}"), inputs);
            }
            size
        }
        _ => {
            let layers = if size >= 10_000 { 20 } else { 10 };
            let width = size / layers;
            let mut previous: Vec<Resource> = Vec::new();
            for l in 0..layers {
                let layer: Vec<Resource> = (0..width)
                    .map(|j| {
                        let mut inputs = Inputs::new().with("index", j);
                        if !previous.is_empty() {
                            inputs.set("a", previous[j].id());
                            inputs.set("b", previous[(j + 1) % width].id());
                        }
                        thing(&mut s, format!("l{l}-{j}"), inputs)
                    })
                    .collect();
                previous = layer;
            }
            layers
        }
    };
    (s.build().expect("valid program"), depth)
}

/// The median duration of three runs of `run` (each returns its own duration).
async fn median<F: std::future::Future<Output = Duration>>(run: impl Fn() -> F) -> Duration {
    let mut runs = [run().await, run().await, run().await];
    runs.sort();
    runs[1]
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The stack's state on disk: its snapshot and its journal.
fn state_mib(dir: &std::path::Path) -> f64 {
    let bytes: u64 = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(std::fs::Metadata::is_file)
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    bytes as f64 / (1024.0 * 1024.0)
}

fn run_case(case: &Case) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let latency = Duration::from_millis(case.latency_ms);
        let provider = Arc::new(TestProvider::new().with_latency(latency));
        let mut providers = Providers::new();
        providers.register(provider.clone(), ["bench:Thing"]);
        let engine = Engine::new(providers, FileBackend::new(dir.path()));
        let (program, depth) = program(&case.shape, case.size);

        let t = Instant::now();
        let plan = engine.preview(&program).await.unwrap();
        let plan_create = t.elapsed();

        let options = ApplyOptions {
            parallelism: case.parallelism,
            ..ApplyOptions::default()
        };
        let t = Instant::now();
        let summary = engine.apply(&program, &plan, &options).await.unwrap();
        let apply = t.elapsed();
        assert!(summary.is_success() && summary.counts.create == case.size);
        // A run holds one plan at a time: what follows is measured without this one.
        drop((plan, summary));

        if let Ok(n) = std::env::var("BENCH_NOOP_PLANS") {
            for _ in 0..n.parse::<usize>().unwrap() {
                engine.preview(&program).await.unwrap();
            }
            return;
        }
        // Reading the state and the no-op plan: the median of three each (a shared machine's
        // noise moves one run by a tenth).
        let load = median(|| async {
            let t = Instant::now();
            engine.state("bench").await.unwrap();
            t.elapsed()
        })
        .await;
        let plan_noop = median(|| async {
            let t = Instant::now();
            let noop = engine.preview(&program).await.unwrap();
            let elapsed = t.elapsed();
            assert!(!noop.has_changes());
            elapsed
        })
        .await;

        // One target: the last layer's first resource (a layered graph), else the first one.
        let target = match case.shape.as_str() {
            "layered" => program.topological_names().last().unwrap().to_owned(),
            _ => "r0".to_owned(),
        };
        let options = PlanOptions {
            targets: Targets::only([target]),
            ..PlanOptions::default()
        };
        let plan_targeted = median(|| async {
            let t = Instant::now();
            engine.preview_with(&program, &options).await.unwrap();
            t.elapsed()
        })
        .await;
        let targeted = engine.preview_with(&program, &options).await.unwrap();
        let reach = targeted.record().steps.len();

        assert_eq!(reach + targeted.record().untargeted, case.size);

        // The floor: the longest chain, or the parallelism bound's waves if those are longer.
        let width = case.size.div_ceil(depth);
        let waves = depth * width.div_ceil(case.parallelism);
        let waves = u32::try_from(waves).unwrap();
        let floor = latency * waves;
        let calls = provider.calls();
        let call_time: Duration = calls.iter().map(|c| c.end - c.start).sum();
        let measured_floor = call_time / u32::try_from(calls.len()).unwrap() * waves;
        let limit = if width > case.parallelism { "bound" } else { "chain" };
        // With no latency there is no critical path to compare with: show the engine's
        // absolute overhead per resource instead.
        let ratio = |floor: Duration| {
            if latency.is_zero() {
                format!("{:.1}us/res", apply.as_secs_f64() * 1e6 / case.size as f64)
            } else {
                format!("{:.3}", apply.as_secs_f64() / floor.as_secs_f64())
            }
        };
        println!(
            "{:<8} {:>6} {:>6}ms {:>6} {:>10.1}ms {:>10.1}ms {:>8.1}ms {:>7.1}ms/{:<5} {:>9.3}s {:>9.3}s ({limit}) {:>6} {:>11} {:>8.1} MiB {:>8.1} MiB",
            case.shape,
            case.size,
            case.latency_ms,
            case.parallelism,
            plan_create.as_secs_f64() * 1e3,
            plan_noop.as_secs_f64() * 1e3,
            load.as_secs_f64() * 1e3,
            plan_targeted.as_secs_f64() * 1e3,
            reach,
            apply.as_secs_f64(),
            floor.as_secs_f64(),
            ratio(floor),
            ratio(measured_floor),
            peak_rss_mib(),
            state_mib(dir.path()),
        );
    });
}

fn main() {
    let mut args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let large = args.iter().any(|a| a == "--large");
    args.retain(|a| a != "--large");
    if let [flag, spec] = args.as_slice()
        && flag == "--case"
    {
        run_case(&Case::parse(spec).expect("a case: shape:nodes:latency_ms:parallelism"));
        return;
    }
    let filter = args.first().cloned().unwrap_or_default();
    let cases: Vec<Case> = match Case::parse(&filter) {
        Some(case) => vec![case],
        None => cases(large)
            .into_iter()
            .filter(|c| c.shape.contains(&filter))
            .collect(),
    };
    println!(
        "{:<8} {:>6} {:>8} {:>6} {:>12} {:>12} {:>10} {:>15} {:>10} {:>18} {:>6} {:>11} {:>12} {:>12}",
        "shape",
        "nodes",
        "latency",
        "par",
        "plan create",
        "plan no-op",
        "(load)",
        "1 target/reach",
        "apply",
        "lower bound",
        "ratio",
        "measured",
        "peak RSS",
        "state file"
    );
    let exe = std::env::current_exe().unwrap();
    for case in cases {
        let status = Command::new(&exe)
            .args(["--case", &case.spec()])
            .status()
            .unwrap();
        assert!(status.success(), "case {} failed", case.spec());
    }
}
