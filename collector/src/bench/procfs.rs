//! CPU time and memory of this process and of the calling thread, from `/proc` (Linux).
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

/// Peak resident set size of the process (`VmHWM`), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
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
    fn reads_this_process() {
        assert!(process_cpu_seconds().is_some());
        assert!(thread_cpu_seconds().is_some());
        assert!(peak_rss_mib().unwrap() > 1.0);
    }
}
