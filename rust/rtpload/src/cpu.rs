//! CPU time of the engine under test (from /proc/PID/stat, which sums all of its threads,
//! including exited ones) and of rtpload itself (getrusage, all threads).

use std::time::Duration;

/// utime + stime of process `pid`: fields 14 and 15 of /proc/PID/stat, in clock ticks.
pub fn process_cpu(pid: u32) -> Result<Duration, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // The command name (field 2) is parenthesised and may contain spaces; fields after the
    // last ')' start with field 3 (state).
    let after_comm = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| format!("{path}: no ')' in stat line"))?;
    let mut fields = after_comm.split_whitespace().skip(14 - 3);
    let mut tick_field = || -> Result<u64, String> {
        fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("{path}: bad utime/stime field"))
    };
    let ticks = tick_field()? + tick_field()?;
    // SAFETY: sysconf has no preconditions; it only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_second = u64::try_from(per_second)
        .ok()
        .filter(|&t| t > 0)
        .ok_or("sysconf(_SC_CLK_TCK) failed")?;
    Ok(Duration::from_nanos(ticks * 1_000_000_000 / per_second))
}

/// User + system CPU time of this process, all threads.
pub fn own_cpu() -> Result<Duration, String> {
    // SAFETY: an all-zero rusage is a valid value, and getrusage only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Err(format!("getrusage: {}", std::io::Error::last_os_error()));
    }
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Ok(Duration::from_micros(
        micros(usage.ru_utime) + micros(usage.ru_stime),
    ))
}

/// Raises the open-file soft limit to the hard limit: each call needs two sockets.
pub fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_both_ways() {
        let mut spin = 0u64;
        for i in 0..5_000_000u64 {
            spin = spin.wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(spin);
        assert!(process_cpu(std::process::id()).is_ok());
        assert!(own_cpu().is_ok_and(|d| d > Duration::ZERO));
        assert!(process_cpu(u32::MAX).is_err());
    }
}
