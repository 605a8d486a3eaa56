//! Engine configuration (VOS3000 names in comments where one exists).

use std::net::IpAddr;
use std::time::Duration;

use mediacore_engine::spec::{DEFAULT_HOLD_TIMEOUT, DEFAULT_RTP_TIMEOUT};
use mediacore_engine::{EchoCancelSpec, JitterBufferSpec, LegSpec, SessionSpec};

#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Local address media sockets bind to ("System IP binding" for multi-NIC hosts).
    pub interface: IpAddr,
    /// Address written into rewritten SDP, if different from `interface` (1:1 NAT).
    pub advertise: Option<IpAddr>,
    /// Further local addresses a leg may have its ports on (`LegSpec::local_ip`), e.g. a
    /// carrier's private network on a multi-NIC host. SDP toward a leg on one of them carries
    /// the address itself (`advertise` maps only `interface`). Order is kept; an address equal
    /// to `interface` or repeated is the same interface.
    pub interfaces: Vec<IpAddr>,
    /// RTP port range, inclusive (`SS_MEDIAPROXYPORT_START` / `_END`). RTP ports are even and
    /// RTCP is RTP + 1, so `port_max` may be the RTCP port of the last pair.
    pub port_min: u16,
    pub port_max: u16,
    /// Worker threads, each owning its sessions' sockets.
    pub workers: usize,
    /// Default media timeout for sessions that do not set one (`SS_RTP_TIMEOUT`).
    pub rtp_timeout: Duration,
    pub hold_timeout: Duration,
    /// Transcoding sessions admitted at most (a slot per session that decodes and re-encodes).
    pub transcode_slots: usize,
    /// A new transcoding session is refused while the busiest media worker uses more than this
    /// share of a core (0.0..=1.0), so existing calls are never degraded by a new one.
    pub cpu_guard: f64,
    /// Every leg's jitter buffer unless its spec says otherwise (`SS_JITTERBUFFER_*`).
    pub jitter_buffer: JitterBufferSpec,
    /// Every leg's echo canceller unless its spec says otherwise (`SS_ECHOCANCEL*`).
    pub echo_cancel: EchoCancelSpec,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            interface: IpAddr::from([127, 0, 0, 1]),
            advertise: None,
            interfaces: Vec::new(),
            port_min: 10000,
            port_max: 20000,
            workers: default_workers(),
            rtp_timeout: DEFAULT_RTP_TIMEOUT,
            hold_timeout: DEFAULT_HOLD_TIMEOUT,
            transcode_slots: DEFAULT_TRANSCODE_SLOTS,
            cpu_guard: DEFAULT_CPU_GUARD,
            jitter_buffer: JitterBufferSpec::default(),
            echo_cancel: EchoCancelSpec::default(),
        }
    }
}

/// Transcoding slots by default: G.729 costs a few ms of CPU per call-second, so a core carries
/// a few hundred transcoded calls; the CPU guard is what really protects a smaller machine.
pub const DEFAULT_TRANSCODE_SLOTS: usize = 1000;
/// Refuse new transcoding above 85 % of a core on the busiest worker: headroom for bursts.
pub const DEFAULT_CPU_GUARD: f64 = 0.85;

/// Half the cores, at least one. Measured on a 2-core machine (bench/README.md): one worker
/// relays 1,000 calls (100,000 packets/s) in about a third of a core, while two workers sharing
/// two cores with the kernel's network processing and the control plane wake twice as often
/// with half as much to do each time and cost ~40 % more CPU per packet. The other half of the
/// cores is left to softirq work and signalling.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| (n.get() / 2).max(1))
        .unwrap_or(1)
}

impl EngineConfig {
    /// Whether `ip` is one of the media interfaces (the default one or a further one).
    pub fn has_interface(&self, ip: IpAddr) -> bool {
        ip == self.interface || self.interfaces.contains(&ip)
    }

    /// The address SDP carries for ports bound on interface `ip`: `advertise` for the default
    /// interface when set, else `ip` itself.
    pub fn sdp_address(&self, ip: IpAddr) -> IpAddr {
        if ip == self.interface {
            self.advertise.unwrap_or(ip)
        } else {
            ip
        }
    }

    /// Checks the configuration; the error names the bad key.
    pub fn validate(&self) -> Result<(), String> {
        if self.port_min == 0 {
            return Err("port_min: must be at least 1".into());
        }
        if self.port_min > self.port_max {
            return Err(format!(
                "port_min: {} is above port_max {}",
                self.port_min, self.port_max
            ));
        }
        let first_even = self.port_min + (self.port_min & 1);
        if first_even
            .checked_add(1)
            .is_none_or(|rtcp| rtcp > self.port_max)
        {
            return Err(format!(
                "port_min/port_max: range {}-{} holds no even RTP port with its RTCP port",
                self.port_min, self.port_max
            ));
        }
        if let Some(ip) = self.interfaces.iter().find(|ip| ip.is_unspecified()) {
            return Err(format!(
                "interfaces: {ip} is not a local address a leg can be given"
            ));
        }
        if self.workers == 0 || self.workers > 64 {
            return Err(format!("workers: {} is not in 1..=64", self.workers));
        }
        if self.rtp_timeout.is_zero() {
            return Err("rtp_timeout: must be greater than zero".into());
        }
        if self.hold_timeout.is_zero() {
            return Err("hold_timeout: must be greater than zero".into());
        }
        if !(self.cpu_guard > 0.0 && self.cpu_guard <= 1.0) {
            return Err(format!("cpu_guard: {} is not in (0, 1]", self.cpu_guard));
        }
        let leg = LegSpec {
            jitter_buffer: self.jitter_buffer,
            echo_cancel: self.echo_cancel,
            ..LegSpec::default()
        };
        SessionSpec {
            caller: leg.clone(),
            callee: leg,
            ..SessionSpec::default()
        }
        .validate()
        .map_err(|e| {
            let field = e.field.trim_start_matches("caller.");
            format!("{field}: {}", e.reason)
        })?;
        Ok(())
    }
}
