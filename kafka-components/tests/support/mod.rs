//! What the crate's tests share.

use std::path::{Path, PathBuf};

/// A program from the project's setup (PATH, or the virtualenv scripts/setup.sh made).
pub(crate) fn tool(name: &str) -> PathBuf {
    if let Some(venv) = std::env::var_os("KAFKA_PLATFORM_VENV") {
        let path = Path::new(&venv).join("bin").join(name);
        if path.exists() {
            return path;
        }
    }
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.exists());
    found.unwrap_or_else(|| {
        panic!("`{name}` is missing: scripts/setup.sh installs it (run scripts/test.sh)")
    })
}

/// A port free on 127.0.0.1 now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
