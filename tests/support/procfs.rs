//! What a process has used, from Linux's `/proc`, for the benchmark programs: CPU time and
//! resident memory of one process, and the processes of a command (a database server's).

use anyhow::Context;

/// User + system CPU seconds `pid` has used so far (`std::process::id()` for this one).
pub fn cpu_s(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat
        .rsplit_once(") ")
        .with_context(|| format!("an unexpected /proc/{pid}/stat line"))?
        .1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime: fields 14 and 15 of proc(5), in clock ticks of 1/100 s on Linux.
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

/// The resident memory of `pid` in MiB.
pub fn rss_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no VmRSS for {pid}"))?;
    Ok(kb / 1024.0)
}

/// The CPU seconds used so far by every running process whose command is `comm` (all of a
/// PostgreSQL server's processes with `postgres`). A process that ends takes its share along.
pub fn cpu_s_of_command(comm: &str) -> anyhow::Result<f64> {
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc")? {
        let Some(pid) = entry?.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let matches = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim_end() == comm);
        // A process may end between the listing and the reading.
        if let (true, Ok(s)) = (matches, cpu_s(pid)) {
            total += s;
        }
    }
    Ok(total)
}
