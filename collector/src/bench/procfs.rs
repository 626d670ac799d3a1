//! CPU time and memory of this process, of the calling thread and of other processes (the local
//! NATS and ClickHouse servers), and which process listens on a TCP port, from `/proc` (Linux).
//! `USER_HZ` is 100 on every Linux this runs on (it is fixed in the kernel ABI for x86_64 and arm64).

const USER_HZ: f64 = 100.0;

/// User + system CPU seconds from a `/proc/.../stat` line (fields 14 and 15, counted after `comm`).
pub fn cpu_seconds_from_stat(stat: &str) -> Option<f64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // fields[0] is field 3 (state), so utime (14) is fields[11] and stime (15) fields[12].
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// CPU seconds used so far by the calling OS thread.
pub fn thread_cpu_seconds() -> Option<f64> {
    cpu_seconds_from_stat(&std::fs::read_to_string("/proc/thread-self/stat").ok()?)
}

/// CPU seconds used so far by the whole process.
pub fn process_cpu_seconds() -> Option<f64> {
    cpu_seconds_from_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// CPU seconds used so far by process `pid` (all its threads).
pub fn pid_cpu_seconds(pid: u32) -> Option<f64> {
    cpu_seconds_from_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Kernel TCP state `0A`: a listening socket.
const TCP_LISTEN: u8 = 0x0A;

/// One socket from `/proc/net/tcp` or `/proc/net/tcp6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSocket {
    pub local_port: u16,
    pub state: u8,
    pub inode: u64,
}

/// Parse one line of `/proc/net/tcp{,6}`: `sl local_address rem_address st ... uid timeout inode ...`,
/// where `local_address` is `HEXADDR:HEXPORT`. `None` for the header or a malformed line.
pub fn parse_proc_net_tcp_line(line: &str) -> Option<TcpSocket> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if !fields.first()?.ends_with(':') {
        return None; // the header line starts with `sl`
    }
    let (_, port_hex) = fields.get(1)?.rsplit_once(':')?;
    Some(TcpSocket {
        local_port: u16::from_str_radix(port_hex, 16).ok()?,
        state: u8::from_str_radix(fields.get(3)?, 16).ok()?,
        inode: fields.get(9)?.parse().ok()?,
    })
}

/// Inode of a `/proc/<pid>/fd/<n>` symlink target such as `socket:[432745]`.
pub fn socket_inode_of_fd_link(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Inodes of the sockets listening on TCP `port` (IPv4 and IPv6) in this network namespace.
pub fn listening_socket_inodes(port: u16) -> Vec<u64> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|table| {
            table
                .lines()
                .filter_map(parse_proc_net_tcp_line)
                .filter(|s| s.state == TCP_LISTEN && s.local_port == port && s.inode != 0)
                .map(|s| s.inode)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The process holding one of `inodes` open (scans `/proc/*/fd`; processes it may not read are skipped).
pub fn pid_holding_socket(inodes: &[u64]) -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .ok()
                .and_then(|t| socket_inode_of_fd_link(&t.to_string_lossy()))
                .is_some_and(|inode| inodes.contains(&inode))
        });
        if holds {
            return Some(pid);
        }
    }
    None
}

/// Peak resident set size of the process (`VmHWM`), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// A numeric field of a `/proc/<pid>/status` text (`VmRSS:  1234 kB` → 1234; counts such as
/// `voluntary_ctxt_switches:` as they are).
pub fn status_field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// What `/proc/<pid>/status` says of a process now: memory in KiB, context switches and threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PidStatus {
    /// Resident set size now (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// Peak resident set size (`VmHWM`), KiB.
    pub peak_rss_kib: u64,
    /// Voluntary context switches since the start (the process waited: I/O, futex, sleep).
    pub voluntary_ctxt_switches: u64,
    /// Involuntary context switches since the start (preempted).
    pub nonvoluntary_ctxt_switches: u64,
    pub threads: u64,
}

impl PidStatus {
    /// Parse a `/proc/<pid>/status` text; `None` when a field is missing.
    pub fn parse(status: &str) -> Option<PidStatus> {
        Some(PidStatus {
            rss_kib: status_field(status, "VmRSS")?,
            peak_rss_kib: status_field(status, "VmHWM")?,
            voluntary_ctxt_switches: status_field(status, "voluntary_ctxt_switches")?,
            nonvoluntary_ctxt_switches: status_field(status, "nonvoluntary_ctxt_switches")?,
            threads: status_field(status, "Threads")?,
        })
    }

    /// Process `pid`'s status now (summed over its threads by the kernel).
    pub fn of(pid: u32) -> Option<PidStatus> {
        PidStatus::parse(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_even_with_spaces_and_parens_in_comm() {
        let stat =
            "1234 (tokio (rt) w) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1 2 3";
        assert_eq!(cpu_seconds_from_stat(stat), Some(3.0));
        assert_eq!(cpu_seconds_from_stat("garbage"), None);
    }

    #[test]
    fn parses_proc_net_tcp_lines() {
        let v4 = "   0: 0100007F:6C3E 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 432745 1 00000000e4002e80 100 0 0 10 0";
        assert_eq!(
            parse_proc_net_tcp_line(v4),
            Some(TcpSocket {
                local_port: 27710,
                state: TCP_LISTEN,
                inode: 432745
            })
        );
        let established = "  12: 0100007F:B4E2 0100007F:54C6 01 00000000:00000000 02:000A7B1C 00000000     0        0 501233 2 0000000000000000 20 4 30 10 -1";
        let s = parse_proc_net_tcp_line(established).unwrap();
        assert_eq!((s.local_port, s.state, s.inode), (46306, 1, 501233));
        let v6 = "   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 98765 1 0000000000000000 100 0 0 10 0";
        assert_eq!(
            parse_proc_net_tcp_line(v6).map(|s| (s.local_port, s.state, s.inode)),
            Some((8080, TCP_LISTEN, 98765))
        );
        let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
        assert_eq!(parse_proc_net_tcp_line(header), None);
        assert_eq!(parse_proc_net_tcp_line("   3: 0100007F:ZZZZ 0 0A"), None);
        assert_eq!(parse_proc_net_tcp_line(""), None);
    }

    #[test]
    fn parses_socket_fd_links() {
        assert_eq!(socket_inode_of_fd_link("socket:[432745]"), Some(432745));
        assert_eq!(socket_inode_of_fd_link("pipe:[432745]"), None);
        assert_eq!(socket_inode_of_fd_link("/dev/null"), None);
    }

    #[test]
    fn finds_the_process_listening_on_a_port() {
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // Our socket's inode: another listener may hold the same port number on another address
        // (tests run in parallel), so the test looks for this one rather than counting.
        let link = std::fs::read_link(format!("/proc/self/fd/{}", listener.as_raw_fd())).unwrap();
        let ours = socket_inode_of_fd_link(&link.to_string_lossy()).unwrap();
        let inodes = listening_socket_inodes(port);
        assert!(inodes.contains(&ours), "{inodes:?} lacks {ours}");
        assert_eq!(pid_holding_socket(&[ours]), Some(std::process::id()));
        drop(listener);
        assert!(!listening_socket_inodes(port).contains(&ours));
        assert!(pid_cpu_seconds(std::process::id()).is_some());
    }

    #[test]
    fn reads_status_fields() {
        let status = "Name:\tx\nVmHWM:\t   2048 kB\nVmRSS:\t   1024 kB\nThreads:\t3\nvoluntary_ctxt_switches:\t17\nnonvoluntary_ctxt_switches:\t4\n";
        assert_eq!(
            PidStatus::parse(status),
            Some(PidStatus {
                rss_kib: 1024,
                peak_rss_kib: 2048,
                voluntary_ctxt_switches: 17,
                nonvoluntary_ctxt_switches: 4,
                threads: 3,
            })
        );
        assert_eq!(status_field(status, "Vm"), None);
        assert_eq!(PidStatus::parse("Name: x"), None);
        let me = PidStatus::of(std::process::id()).unwrap();
        assert!(me.rss_kib > 0 && me.peak_rss_kib >= me.rss_kib && me.threads >= 1);
    }

    #[test]
    fn reads_this_process() {
        assert!(process_cpu_seconds().is_some());
        assert!(thread_cpu_seconds().is_some());
        assert!(peak_rss_mib().unwrap() > 1.0);
    }
}
