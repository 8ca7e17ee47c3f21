//! Debian's nginx run by the tests in a directory of its own, with the nginx block of
//! docs/DEPLOY.md in front of one or more civicmap servers (`cdn.rs`, `scale.rs`).

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;

/// The nginx binary: `$NGINX`, else `nginx` on the PATH, else Debian's `/usr/sbin/nginx`.
pub fn nginx_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NGINX") {
        return Some(path.into());
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nginx"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.is_file()))
}

/// The nginx block of docs/DEPLOY.md that follows its marker.
fn documented_block() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/DEPLOY.md"))
        .expect("docs/DEPLOY.md");
    let marker = "<!-- tests/api/cdn.rs reads the next nginx block -->";
    let at = doc
        .find(marker)
        .expect("docs/DEPLOY.md lost the marker of its tested nginx block");
    let after = &doc[at + marker.len()..];
    let start = after
        .find("```nginx\n")
        .expect("an nginx block after the marker")
        + 9;
    let end = after[start..]
        .find("```")
        .expect("the end of the nginx block");
    after[start..start + end].to_owned()
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "the nginx block of docs/DEPLOY.md must hold `{from}` once"
    );
    text.replacen(from, to, 1)
}

/// A loopback port free now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx running in a directory of its own, stopped (SIGTERM to its master) when dropped.
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    /// The server as documented.
    pub port: u16,
    /// The same server without `proxy_cache_bypass` and `proxy_no_cache`.
    pub bare_port: u16,
}

impl Nginx {
    /// nginx with the documented block in front of `upstreams` (several: round robin).
    pub async fn start(binary: &Path, upstreams: &[SocketAddr]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (port, bare_port) = (free_port(), free_port());
        for sub in ["cache", "tmp"] {
            std::fs::create_dir(root.join(sub)).unwrap();
            // Workers run as nobody when the tests run as root.
            std::fs::set_permissions(root.join(sub), std::fs::Permissions::from_mode(0o777))
                .unwrap();
        }
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let documented = documented_block();
        let ours = replace_once(
            &documented,
            "/var/cache/nginx/civicmap",
            &root.join("cache").display().to_string(),
        );
        let servers = upstreams
            .iter()
            .map(|upstream| format!("server {upstream};"))
            .collect::<Vec<_>>()
            .join("\n    ");
        let ours = replace_once(&ours, "server 127.0.0.1:8080;", &servers);
        let ours = replace_once(&ours, "listen 80;", &format!("listen 127.0.0.1:{port};"));
        let server = &ours[ours.find("\nserver {").expect("a server block")..];
        let bare: String = server
            .lines()
            .filter(|l| !l.contains("proxy_cache_bypass") && !l.contains("proxy_no_cache"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            bare.lines().count() + 2,
            server.lines().count(),
            "both lines taken out"
        );
        let bare = replace_once(
            &bare,
            &format!("listen 127.0.0.1:{port};"),
            &format!("listen 127.0.0.1:{bare_port};"),
        );
        let user = if nix::unistd::geteuid().is_root() {
            "user nobody nogroup;"
        } else {
            ""
        };
        let root_text = root.display();
        let config = format!(
            "{user}
worker_processes 1;
daemon off;
pid {root_text}/nginx.pid;
error_log {root_text}/error.log notice;
events {{ worker_connections 256; }}
http {{
    access_log {root_text}/access.log;
    client_body_temp_path {root_text}/tmp/body;
    proxy_temp_path {root_text}/tmp/proxy;
    fastcgi_temp_path {root_text}/tmp/fastcgi;
    uwsgi_temp_path {root_text}/tmp/uwsgi;
    scgi_temp_path {root_text}/tmp/scgi;
{ours}
{bare}
}}
"
        );
        std::fs::write(root.join("nginx.conf"), &config).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(root)
            .arg("-c")
            .arg(root.join("nginx.conf"))
            .arg("-e")
            .arg(root.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
        let mut nginx = Self {
            child,
            dir,
            port,
            bare_port,
        };
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if let Some(status) = nginx.child.try_wait().unwrap() {
                panic!("nginx exited ({status}):\n{}\n{config}", nginx.error_log());
            }
            let up = async |port: u16| {
                client
                    .get(format!("http://127.0.0.1:{port}/healthz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == StatusCode::OK)
            };
            if up(port).await && up(bare_port).await {
                return nginx;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("nginx did not answer within 10 s:\n{}", nginx.error_log());
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}
