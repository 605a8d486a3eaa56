//! The result of one run, as one human line or one JSON object.

use crate::histogram::Histogram;
use crate::receiver::ReceiverCounts;
use std::fmt::Write;

pub struct Report {
    pub engine: String,
    /// "relay" or "transcode".
    pub mode: &'static str,
    pub calls: u32,
    pub setup_failures: u32,
    pub delete_failures: u32,
    pub duration_s: f64,
    pub sent: u64,
    pub send_errors: u64,
    pub counts: ReceiverCounts,
    pub latency: Histogram,
    /// `[A→B, B→A]`.
    pub latency_by_direction: [Histogram; 2],
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
            "{} ({}): {} calls ({} failed setup) {:.0}s: sent {} received {} lost {} ({:.3}%) \
             latency us p50 {:.1} p90 {:.1} p99 {:.1} max {:.1} \
             (A→B p50 {:.1} p99 {:.1}, B→A p50 {:.1} p99 {:.1})",
            self.engine,
            self.mode,
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
            self.latency_by_direction[0].percentile_us(50.0),
            self.latency_by_direction[0].percentile_us(99.0),
            self.latency_by_direction[1].percentile_us(50.0),
            self.latency_by_direction[1].percentile_us(99.0),
        );
        if let (Some(cpu), Some((pct, per_call, per_packet))) =
            (self.engine_cpu_s, self.engine_figures())
        {
            let _ = write!(
                line,
                "; engine cpu {cpu:.2}s ({pct:.1}% of a core, {:.3} ms/call-s, {:.0} ns/pkt)",
                per_call / 1000.0,
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
            ("wrong payload", c.wrong_payload),
            ("ordinal ahead", c.ordinal_ahead),
            ("ordinal before first", c.ordinal_before_first),
            ("ordinal beyond", c.ordinal_beyond),
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
            "{{\"engine\":{},\"mode\":{},\"calls\":{},\"active_calls\":{},\"duration_s\":{:.3},\
             \"sent\":{},\"received\":{},\"lost\":{},\"loss_pct\":{:.4},\
             \"latency_us\":{{\"p50\":{:.1},\"p90\":{:.1},\"p99\":{:.1},\"max\":{:.1}}},\
             \"latency_by_direction_us\":{{\"a_to_b\":{},\"b_to_a\":{}}},\
             \"engine_cpu_s\":{},\"engine_cpu_pct_of_core\":{},\"cpu_us_per_call_second\":{},\
             \"cpu_ms_per_call_second\":{},\
             \"cpu_ns_per_packet\":{},\"gen_cpu_s\":{:.3},\"gen_cpu_pct_of_core\":{:.2},\
             \"send_lateness_us\":{{\"p50\":{:.1},\"p99\":{:.1},\"max\":{:.1}}},\
             \"setup_failures\":{},\"delete_failures\":{},\"send_errors\":{},\"duplicates\":{},\
             \"misrouted\":{},\"foreign\":{},\"recv_errors\":{},\"wrong_payload\":{},\
             \"ordinal_anomalies\":{{\"ahead\":{},\"before_first\":{},\"beyond\":{}}}}}",
            json_string(&self.engine),
            json_string(self.mode),
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
            direction_json(&self.latency_by_direction[0]),
            direction_json(&self.latency_by_direction[1]),
            opt(self.engine_cpu_s),
            opt(figures.map(|f| f.0)),
            opt(figures.map(|f| f.1)),
            figures.map_or("null".to_string(), |f| format!("{:.4}", f.1 / 1000.0)),
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
            c.wrong_payload,
            c.ordinal_ahead,
            c.ordinal_before_first,
            c.ordinal_beyond,
        )
    }
}

fn direction_json(h: &Histogram) -> String {
    format!(
        "{{\"p50\":{:.1},\"p99\":{:.1},\"max\":{:.1}}}",
        h.percentile_us(50.0),
        h.percentile_us(99.0),
        h.max_us()
    )
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
