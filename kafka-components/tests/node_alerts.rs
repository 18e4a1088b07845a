//! The node alerts as the platform's Prometheus evaluates them: the rendered rules, the real
//! node_exporter and the real Prometheus. The machine's state is a procfs the test writes
//! (node_exporter's `--path.procfs`): exhausting this shared machine's memory or CPU for
//! real would starve everything else on it. The disk is real: a small tmpfs the test mounts
//! (as root) and fills, listed in that procfs's mounts as the ext4 volume a node's data is
//! on (the rule leaves tmpfs out).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kafka_components::render::{self, paths};
use kafka_components::{PlatformConfig, local_nodes};
use serde_json::Value;
use support::{free_port, tool};

/// USER_HZ: the clock ticks per second `/proc/stat` counts in.
const TICKS: u64 = 100;

/// A process the test started, stopped when the test ends however it ends.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `/proc/meminfo` of a 16 GB machine with `available_kb` available.
fn write_meminfo(procfs: &Path, available_kb: u64) {
    let text = format!(
        "MemTotal:       16000000 kB\nMemFree:        {available_kb} kB\nMemAvailable:   {available_kb} kB\n"
    );
    std::fs::write(procfs.join("meminfo"), text).unwrap();
}

/// `/proc/stat` of two CPUs with `busy` and `idle` ticks each.
fn write_stat(procfs: &Path, busy: u64, idle: u64) {
    let cpu = |name: &str, n: u64| format!("{name} {} 0 0 {} 0 0 0 0 0 0\n", busy * n, idle * n);
    let text = cpu("cpu ", 2)
        + &cpu("cpu0", 1)
        + &cpu("cpu1", 1)
        + "intr 0\nctxt 0\nbtime 1765000000\nprocesses 1\nprocs_running 1\nprocs_blocked 0\n";
    let staged = procfs.join("stat.new");
    std::fs::write(&staged, text).unwrap();
    std::fs::rename(staged, procfs.join("stat")).unwrap();
}

/// A tmpfs of 16 MiB mounted at a folder of the test's, unmounted when the test ends.
struct Disk(std::path::PathBuf);

impl Disk {
    /// Mounts it at `at`, or says why it cannot (mounting needs root).
    fn mount(at: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(at).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !mounted.status.success() {
            return Err(String::from_utf8_lossy(&mounted.stderr).trim().to_owned());
        }
        Ok(Self(at.to_owned()))
    }

    /// Fills it to all but 1 MiB, or empties it.
    fn fill(&self, full: bool) {
        let file = self.0.join("data");
        if full {
            std::fs::write(file, vec![1u8; 15 << 20]).unwrap();
        } else {
            std::fs::remove_file(file).unwrap();
        }
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The alerts Prometheus has firing now, by name.
async fn firing(prometheus: u16) -> Vec<String> {
    let url = format!("http://127.0.0.1:{prometheus}/api/v1/alerts");
    let Some((200, body)) = iac_local::http_get_body(&url).await else {
        return Vec::new();
    };
    let answer: Value = serde_json::from_str(&body).unwrap();
    answer["data"]["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["state"] == "firing")
        .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_owned))
        .collect()
}

/// Waits until `check` holds of the firing alerts; fails naming `what` after two minutes.
async fn wait_until(prometheus: u16, what: &str, check: impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = firing(prometheus).await;
        if check(&now) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: firing {now:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn memory_cpu_and_disk_alerts_fire_from_what_node_exporter_reads_and_resolve_when_it_eases() {
    let dir = tempfile::tempdir().unwrap();
    let procfs = dir.path().join("proc");
    std::fs::create_dir_all(procfs.join("1")).unwrap();
    // The data volume: the CI runs as root; elsewhere a test run without root leaves it out.
    let disk = match Disk::mount(&dir.path().join("data-volume")) {
        Ok(disk) => Some(disk),
        Err(why) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("DiskFilling not staged: a tmpfs cannot be mounted ({why}); run as root");
            None
        }
        Err(why) => panic!("a tmpfs cannot be mounted ({why}): the tests run as root"),
    };
    if let Some(disk) = &disk {
        let mounts = format!("/dev/nvme1n1 {} ext4 rw,relatime 0 0\n", disk.0.display());
        std::fs::write(procfs.join("1/mounts"), mounts).unwrap();
        disk.fill(true);
    }
    std::fs::create_dir_all(dir.path().join("sys")).unwrap();
    // 95 % of the memory in use; both CPUs busy, their clocks advanced as time passes.
    write_meminfo(&procfs, 800_000);
    write_stat(&procfs, 0, 0);
    let busy = Arc::new(AtomicBool::new(true));
    let clock = std::thread::spawn({
        let (procfs, busy) = (procfs.clone(), Arc::clone(&busy));
        move || {
            let begun = Instant::now();
            let (mut busy_ticks, mut idle_ticks, mut counted) = (0, 0, 0);
            while Arc::strong_count(&busy) > 1 {
                let ticks = u64::try_from(begun.elapsed().as_millis()).unwrap() * TICKS / 1000;
                if busy.load(Ordering::SeqCst) {
                    busy_ticks += ticks - counted;
                } else {
                    idle_ticks += ticks - counted;
                }
                counted = ticks;
                write_stat(&procfs, busy_ticks, idle_ticks);
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    });

    // The rules as rendered, every alert's pending time cut to a second.
    let mut config = PlatformConfig::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
        "local",
    )
    .unwrap();
    config.monitoring.alerts_pending_at_most = Some(Duration::from_secs(1));
    let files = render::render("local", &config, &local_nodes("local")).unwrap();
    let rules = files.iter().find(|f| f.path == paths::ALERT_RULES).unwrap();
    std::fs::write(dir.path().join("rules.yml"), &rules.contents).unwrap();
    let (exporter, prometheus) = (free_port(), free_port());
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{exporter}']\n        labels: {{node: platform-1, role: platform, zone: local}}\n"
        ),
    )
    .unwrap();

    let _exporter = Started(
        Command::new(tool("prometheus-node-exporter"))
            .arg(format!("--web.listen-address=127.0.0.1:{exporter}"))
            .arg(format!("--path.procfs={}", procfs.display()))
            .arg(format!("--path.sysfs={}", dir.path().join("sys").display()))
            .args([
                "--collector.disable-defaults",
                "--collector.cpu",
                "--collector.meminfo",
                "--collector.filesystem",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let _prometheus = Started(
        Command::new(tool("prometheus"))
            .current_dir(dir.path())
            .arg("--config.file=prometheus.yml")
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prometheus}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let alerts: &[&str] = if disk.is_some() {
        &["HighMemoryUsage", "HighCpuUsage", "DiskFilling"]
    } else {
        &["HighMemoryUsage", "HighCpuUsage"]
    };
    wait_until(prometheus, "the node alerts fire", |now| {
        alerts.iter().all(|alert| now.iter().any(|n| n == alert))
    })
    .await;

    // Memory freed, the CPUs idle and the disk emptied: all resolve (the CPU's once its
    // 5-minute rate, which still holds the busy seconds, falls under 90 %).
    write_meminfo(&procfs, 12_000_000);
    busy.store(false, Ordering::SeqCst);
    if let Some(disk) = &disk {
        disk.fill(false);
    }
    wait_until(prometheus, "the node alerts resolve", |now| {
        !now.iter().any(|n| alerts.contains(&n.as_str()))
    })
    .await;
    drop(busy);
    clock.join().unwrap();
}
