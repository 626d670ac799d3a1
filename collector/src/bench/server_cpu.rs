//! CPU used by the NATS and ClickHouse server processes during a bench run.
//!
//! The server's pid comes from a flag, or else is the local process listening on the URL's TCP port
//! (`/proc/net/tcp{,6}` LISTEN socket → inode → `/proc/*/fd` link `socket:[inode]`). It is the whole
//! server process, so it also counts any other client's load on that server during the run. When no
//! pid can be found (remote server, no permission) the CPU is `null` with a note saying why.

use super::procfs::{listening_socket_inodes, pid_cpu_seconds, pid_holding_socket};
use super::report::Stage;

/// `(host, port)` of the first server in `url` (`scheme://[user:pass@]host[:port][/...]`, NATS
/// URL lists separated by commas); the scheme's default port when none is given.
pub fn host_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("nats", url));
    let first = rest.split(',').next()?;
    let authority = first.split(['/', '?']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => 4222,
    };
    // IPv6 literal: `[::1]:4222`.
    if let Some(v6) = host_port.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => default_port,
        };
        return Some((host.to_owned(), port));
    }
    match host_port.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None if !host_port.is_empty() => Some((host_port.to_owned(), default_port)),
        None => None,
    }
}

/// Whether `host` names this machine's loopback (where a listener in `/proc/net/tcp` is the server).
pub fn is_loopback(host: &str) -> bool {
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

/// A server process whose CPU is sampled before and after the run (or why it cannot be).
#[derive(Debug, Clone)]
pub struct ServerCpu {
    pub name: &'static str,
    pub pid: Option<u32>,
    pub note: String,
    cpu_at_start: Option<f64>,
}

impl ServerCpu {
    /// Find the server (flag pid first, else the local listener of `url`'s port) and read its CPU now.
    pub fn start(name: &'static str, url: &str, pid_flag: Option<u32>) -> ServerCpu {
        let (pid, note) = match pid_flag {
            Some(pid) => (Some(pid), format!("pid {pid} from the command line")),
            None => find_server(url),
        };
        let cpu_at_start = pid.and_then(pid_cpu_seconds);
        let note = match (pid, cpu_at_start) {
            (Some(pid), None) => format!("{note}; /proc/{pid}/stat is not readable"),
            (Some(_), Some(_)) => {
                format!("{note}; whole process, so it includes other clients' load during the run")
            }
            (None, _) => note,
        };
        ServerCpu {
            name,
            pid,
            note,
            cpu_at_start,
        }
    }

    /// CPU seconds since `start`, `None` if it was not measurable (or the process went away).
    pub fn cpu_since_start(&self) -> Option<f64> {
        let start = self.cpu_at_start?;
        Some(pid_cpu_seconds(self.pid?)? - start)
    }

    /// The report's stage for this server: `cpu` from `cpu_since_start`, over `events` events.
    pub fn stage(&self, cpu: Option<f64>, events: usize) -> Stage {
        let note = match (cpu, self.cpu_at_start) {
            (None, Some(_)) => format!(
                "{}; its CPU could not be read at the end (exited?)",
                self.note
            ),
            _ => self.note.clone(),
        };
        Stage {
            pid: self.pid,
            note: Some(note),
            ..Stage::new(self.name, cpu, events)
        }
    }
}

/// `(pid, how it was found)` or `(None, why not)`.
fn find_server(url: &str) -> (Option<u32>, String) {
    let Some((host, port)) = host_port(url) else {
        return (None, "no host:port in the server URL".to_owned());
    };
    if !is_loopback(&host) {
        return (
            None,
            format!(
                "server host {host} is not loopback: its process is not visible here (pass its pid if it runs on this machine)"
            ),
        );
    }
    let inodes = listening_socket_inodes(port);
    if inodes.is_empty() {
        return (
            None,
            format!("no socket listening on TCP port {port} in /proc/net/tcp{{,6}}"),
        );
    }
    match pid_holding_socket(&inodes) {
        Some(pid) => {
            // The command name shows at a glance that the right process was found.
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let comm = comm.trim();
            (
                Some(pid),
                format!("pid {pid} ({comm}), found listening on TCP port {port}"),
            )
        }
        None => (
            None,
            format!(
                "no readable /proc/*/fd holds the socket listening on port {port} (other user or container)"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_of_server_urls() {
        let hp = host_port;
        assert_eq!(
            hp("nats://127.0.0.1:21718"),
            Some(("127.0.0.1".into(), 21718))
        );
        assert_eq!(
            hp("http://127.0.0.1:17848/"),
            Some(("127.0.0.1".into(), 17848))
        );
        assert_eq!(
            hp("nats://user:p@ss@localhost:4223,nats://10.0.0.2:4222"),
            Some(("localhost".into(), 4223))
        );
        assert_eq!(hp("nats://[::1]:4222"), Some(("::1".into(), 4222)));
        assert_eq!(hp("http://ch.example"), Some(("ch.example".into(), 80)));
        assert_eq!(hp("127.0.0.1:4222"), Some(("127.0.0.1".into(), 4222)));
        assert_eq!(hp("nats://127.0.0.1:notaport"), None);
        assert_eq!(hp("http://"), None);
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1") && is_loopback("localhost") && is_loopback("::1"));
        assert!(!is_loopback("10.0.0.2") && !is_loopback("clickhouse.svc"));
    }

    #[test]
    fn local_listener_is_found_and_remote_is_explained() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let local = ServerCpu::start("x", &format!("http://127.0.0.1:{port}"), None);
        assert_eq!(local.pid, Some(std::process::id()));
        assert!(local.cpu_since_start().unwrap() >= 0.0);

        let remote = ServerCpu::start("x", "nats://10.1.2.3:4222", None);
        assert_eq!((remote.pid, remote.cpu_since_start()), (None, None));
        assert!(remote.note.contains("not loopback"), "{}", remote.note);

        drop(listener);
        let gone = ServerCpu::start("x", &format!("http://127.0.0.1:{port}"), None);
        assert_eq!(gone.cpu_since_start(), None);
        assert!(gone.note.contains("no socket listening"), "{}", gone.note);
    }
}
