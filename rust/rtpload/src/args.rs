//! Command-line options. Every numeric option is range-checked so a run is always bounded.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Where SIPp's Debian package installs its G.711 A-law speech clip.
pub const DEFAULT_PCAP: &str = "/usr/share/sip-tester/g711a.pcap";

pub const USAGE: &str = "\
usage: rtpload (--ng ADDR:PORT | --direct) [options]
       rtpload --codec-floor [--floor-seconds S] [--pcap FILE] [--json]

Drives RTP calls through a media engine controlled by rtpengine's ng protocol
(offer/answer/delete over UDP), or directly between the two endpoints (--direct), and
reports loss, one-way latency and CPU.

  --ng ADDR:PORT       ng control address of the engine under test
  --direct             no engine: endpoints A and B send to each other (latency floor)
  --mode MODE          relay (default): PCMA both ways, probe payloads, exact matching;
                       transcode: leg A PCMA, leg B G.729 (ng codec transcode G729),
                       real speech from --pcap, latency by per-stream ordinal matching
  --pcap FILE          RTP/PCMA speech clip, looped
                       (default /usr/share/sip-tester/g711a.pcap)
  --codec-floor        no traffic: measure libbcg729 encode + decode CPU per call-second
                       (50 packets = 100 frames each way) and exit
  --floor-seconds S    CPU seconds the codec floor measurement runs, 1..=60 (default 3)
  --calls N            concurrent calls, 1..=10000 (default 100)
  --duration S         timed phase in seconds, 1..=600 (default 10)
  --warmup-ms MS       traffic before the timed phase, excluded (default 1000)
  --grace-ms MS        wait for stragglers after the last packet (default 300)
  --local-ip IP        address of the endpoint sockets (default 127.0.0.1)
  --port-base PORT     first endpoint port; A=base+2i, B=base+2i+1 (default 20000)
  --engine-pid PID     measure this process's CPU during the timed phase; repeat
                       the option to sum several processes (engine workers)
  --engine-name NAME   label for the report (default \"direct\" or \"ng\")
  --ng-timeout-ms MS   wait per ng attempt (default 2000)
  --ng-attempts N      sends per ng request, same cookie (default 3)
  --tick-us US         minimum sender sleep; sends due within it go together (default 100)
  --json               print one JSON object instead of the human line
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// PCMA both ways; payloads carry probe records (exact latency and loss).
    Relay,
    /// Leg A PCMA, leg B G.729; real speech; ordinal matching by the engine's RTP sequence.
    Transcode,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Relay => "relay",
            Mode::Transcode => "transcode",
        }
    }
}

pub struct Options {
    pub ng: Option<SocketAddr>,
    pub mode: Mode,
    pub pcap: PathBuf,
    /// `Some(cpu seconds)`: run the codec floor measurement instead of traffic.
    pub codec_floor: Option<Duration>,
    pub calls: u32,
    pub duration: Duration,
    pub warmup: Duration,
    pub grace: Duration,
    pub local_ip: IpAddr,
    pub port_base: u16,
    pub engine_pids: Vec<u32>,
    pub engine_name: String,
    pub ng_timeout: Duration,
    pub ng_attempts: u32,
    pub tick: Duration,
    pub json: bool,
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut opts = Options {
        ng: None,
        mode: Mode::Relay,
        pcap: PathBuf::from(DEFAULT_PCAP),
        codec_floor: None,
        calls: 100,
        duration: Duration::from_secs(10),
        warmup: Duration::from_millis(1000),
        grace: Duration::from_millis(300),
        local_ip: IpAddr::from([127, 0, 0, 1]),
        port_base: 20_000,
        engine_pids: Vec::new(),
        engine_name: String::new(),
        ng_timeout: Duration::from_millis(2000),
        ng_attempts: 3,
        tick: Duration::from_micros(100),
        json: false,
    };
    let mut direct = false;
    let mut codec_floor = false;
    let mut floor_seconds = Duration::from_secs(3);
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--ng" => opts.ng = Some(parse_value(&flag, &value()?)?),
            "--direct" => direct = true,
            "--mode" => {
                opts.mode = match value()?.as_str() {
                    "relay" => Mode::Relay,
                    "transcode" => Mode::Transcode,
                    other => {
                        return Err(format!("--mode must be relay or transcode, not {other:?}"))
                    }
                }
            }
            "--pcap" => opts.pcap = PathBuf::from(value()?),
            "--codec-floor" => codec_floor = true,
            "--floor-seconds" => {
                floor_seconds = Duration::from_secs(ranged(&flag, &value()?, 1, 60)?);
            }
            "--calls" => opts.calls = ranged(&flag, &value()?, 1, 10_000)? as u32,
            "--duration" => opts.duration = Duration::from_secs(ranged(&flag, &value()?, 1, 600)?),
            "--warmup-ms" => opts.warmup = millis(&flag, &value()?, 0, 60_000)?,
            "--grace-ms" => opts.grace = millis(&flag, &value()?, 0, 10_000)?,
            "--local-ip" => opts.local_ip = parse_value(&flag, &value()?)?,
            "--port-base" => opts.port_base = ranged(&flag, &value()?, 1024, 65_000)? as u16,
            "--engine-pid" => opts.engine_pids.push(parse_value(&flag, &value()?)?),
            "--engine-name" => opts.engine_name = value()?,
            "--ng-timeout-ms" => opts.ng_timeout = millis(&flag, &value()?, 10, 60_000)?,
            "--ng-attempts" => opts.ng_attempts = ranged(&flag, &value()?, 1, 10)? as u32,
            "--tick-us" => {
                opts.tick = Duration::from_micros(ranged(&flag, &value()?, 1, 20_000)?);
            }
            "--json" => opts.json = true,
            other => return Err(format!("unknown option {other:?}\n{USAGE}")),
        }
    }
    if codec_floor {
        if direct || opts.ng.is_some() {
            return Err(format!(
                "--codec-floor runs no traffic: drop --ng/--direct\n{USAGE}"
            ));
        }
        opts.codec_floor = Some(floor_seconds);
        return Ok(opts);
    }
    if direct == opts.ng.is_some() {
        return Err(format!(
            "give exactly one of --ng ADDR:PORT or --direct\n{USAGE}"
        ));
    }
    if u32::from(opts.port_base) + 2 * opts.calls > 65_535 {
        return Err("--port-base + 2 * --calls exceeds 65535".into());
    }
    if opts.engine_name.is_empty() {
        opts.engine_name = if direct { "direct" } else { "ng" }.into();
    }
    Ok(opts)
}

fn parse_value<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("bad value {text:?} for {flag}"))
}

fn ranged(flag: &str, text: &str, min: u64, max: u64) -> Result<u64, String> {
    let v: u64 = parse_value(flag, text)?;
    if !(min..=max).contains(&v) {
        return Err(format!("{flag} must be in {min}..={max}"));
    }
    Ok(v)
}

fn millis(flag: &str, text: &str, min: u64, max: u64) -> Result<Duration, String> {
    ranged(flag, text, min, max).map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_engine_run() {
        let opts = parse(args(&[
            "--ng",
            "127.0.0.1:2224",
            "--calls",
            "1000",
            "--json",
            "--engine-pid",
            "7",
            "--engine-pid",
            "9",
        ]));
        assert!(opts.is_ok_and(|o| o.calls == 1000
            && o.json
            && o.engine_name == "ng"
            && o.engine_pids == [7, 9]
            && o.mode == Mode::Relay
            && o.codec_floor.is_none()));
    }

    #[test]
    fn parses_transcode_and_codec_floor() {
        let opts = parse(args(&[
            "--direct",
            "--mode",
            "transcode",
            "--pcap",
            "/x.pcap",
        ]));
        assert!(opts.is_ok_and(|o| o.mode == Mode::Transcode && o.pcap.as_os_str() == "/x.pcap"));
        let opts = parse(args(&["--codec-floor", "--floor-seconds", "2"]));
        assert!(opts.is_ok_and(|o| o.codec_floor == Some(Duration::from_secs(2))));
        assert!(parse(args(&["--direct", "--mode", "bridge"])).is_err());
        assert!(parse(args(&["--codec-floor", "--direct"])).is_err());
        assert!(parse(args(&["--codec-floor", "--floor-seconds", "0"])).is_err());
    }

    #[test]
    fn rejects_bad_combinations() {
        assert!(parse(args(&[])).is_err());
        assert!(parse(args(&["--direct", "--ng", "127.0.0.1:1"])).is_err());
        assert!(parse(args(&["--direct", "--calls", "0"])).is_err());
        assert!(parse(args(&["--direct", "--duration"])).is_err());
        assert!(parse(args(&[
            "--direct",
            "--port-base",
            "60000",
            "--calls",
            "5000"
        ]))
        .is_err());
    }
}
