//! The result of one run, as one human line or one JSON object.

use crate::histogram::Histogram;
use crate::receiver::ReceiverCounts;
use std::fmt::Write;

pub struct Report {
    pub engine: String,
    pub calls: u32,
    pub setup_failures: u32,
    pub delete_failures: u32,
    pub duration_s: f64,
    pub sent: u64,
    pub send_errors: u64,
    pub counts: ReceiverCounts,
    pub latency: Histogram,
    /// Sender lateness against the schedule, a check that rtpload itself kept up.
    pub send_lateness: Histogram,
    /// Engine CPU seconds during the timed phase; `None` without --engine-pid.
    pub engine_cpu_s: Option<f64>,
    pub gen_cpu_s: f64,
}

impl Report {
    fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.counts.received)
    }

    fn loss_pct(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        self.lost() as f64 * 100.0 / self.sent as f64
    }

    fn active_calls(&self) -> u32 {
        self.calls - self.setup_failures
    }

    fn engine_figures(&self) -> Option<(f64, f64, Option<f64>)> {
        let cpu = self.engine_cpu_s?;
        let pct = cpu * 100.0 / self.duration_s;
        let call_seconds = f64::from(self.active_calls()) * self.duration_s;
        let us_per_call_second = if call_seconds > 0.0 {
            cpu * 1e6 / call_seconds
        } else {
            0.0
        };
        let ns_per_packet =
            (self.counts.received > 0).then(|| cpu * 1e9 / self.counts.received as f64);
        Some((pct, us_per_call_second, ns_per_packet))
    }

    pub fn human(&self) -> String {
        let l = &self.latency;
        let mut line = format!(
            "{}: {} calls ({} failed setup) {:.0}s: sent {} received {} lost {} ({:.3}%) \
             latency us p50 {:.1} p90 {:.1} p99 {:.1} max {:.1}",
            self.engine,
            self.calls,
            self.setup_failures,
            self.duration_s,
            self.sent,
            self.counts.received,
            self.lost(),
            self.loss_pct(),
            l.percentile_us(50.0),
            l.percentile_us(90.0),
            l.percentile_us(99.0),
            l.max_us(),
        );
        if let (Some(cpu), Some((pct, per_call, per_packet))) =
            (self.engine_cpu_s, self.engine_figures())
        {
            let _ = write!(
                line,
                "; engine cpu {cpu:.2}s ({pct:.1}% of a core, {per_call:.1} us/call-s, {:.0} ns/pkt)",
                per_packet.unwrap_or(0.0)
            );
        }
        let _ = write!(
            line,
            "; rtpload cpu {:.2}s ({:.1}% of a core), send lateness p99 {:.0} us",
            self.gen_cpu_s,
            self.gen_cpu_s * 100.0 / self.duration_s,
            self.send_lateness.percentile_us(99.0)
        );
        let c = &self.counts;
        for (name, value) in [
            ("delete failures", u64::from(self.delete_failures)),
            ("send errors", self.send_errors),
            ("duplicates", c.duplicates),
            ("misrouted", c.misrouted),
            ("foreign", c.foreign),
            ("recv errors", c.recv_errors),
        ] {
            if value > 0 {
                let _ = write!(line, "; {name} {value}");
            }
        }
        line
    }

    pub fn json(&self) -> String {
        let l = &self.latency;
        let c = &self.counts;
        let figures = self.engine_figures();
        let opt = |v: Option<f64>| v.map_or("null".to_string(), |v| format!("{v:.3}"));
        format!(
            "{{\"engine\":{},\"calls\":{},\"active_calls\":{},\"duration_s\":{:.3},\
             \"sent\":{},\"received\":{},\"lost\":{},\"loss_pct\":{:.4},\
             \"latency_us\":{{\"p50\":{:.1},\"p90\":{:.1},\"p99\":{:.1},\"max\":{:.1}}},\
             \"engine_cpu_s\":{},\"engine_cpu_pct_of_core\":{},\"cpu_us_per_call_second\":{},\
             \"cpu_ns_per_packet\":{},\"gen_cpu_s\":{:.3},\"gen_cpu_pct_of_core\":{:.2},\
             \"send_lateness_us\":{{\"p50\":{:.1},\"p99\":{:.1},\"max\":{:.1}}},\
             \"setup_failures\":{},\"delete_failures\":{},\"send_errors\":{},\"duplicates\":{},\
             \"misrouted\":{},\"foreign\":{},\"recv_errors\":{}}}",
            json_string(&self.engine),
            self.calls,
            self.active_calls(),
            self.duration_s,
            self.sent,
            c.received,
            self.lost(),
            self.loss_pct(),
            l.percentile_us(50.0),
            l.percentile_us(90.0),
            l.percentile_us(99.0),
            l.max_us(),
            opt(self.engine_cpu_s),
            opt(figures.map(|f| f.0)),
            opt(figures.map(|f| f.1)),
            opt(figures.and_then(|f| f.2)),
            self.gen_cpu_s,
            self.gen_cpu_s * 100.0 / self.duration_s,
            self.send_lateness.percentile_us(50.0),
            self.send_lateness.percentile_us(99.0),
            self.send_lateness.max_us(),
            self.setup_failures,
            self.delete_failures,
            self.send_errors,
            c.duplicates,
            c.misrouted,
            c.foreign,
            c.recv_errors,
        )
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_json_strings() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
