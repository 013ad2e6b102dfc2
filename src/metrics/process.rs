//! The standard `process_*` metrics (CPU, memory, file descriptors, start time),
//! read from `/proc/self` at scrape time. prometheus-client ships no process
//! collector; on systems without `/proc` these series are simply absent.
//! Prefixed like every other metric of the gateway (`registrar_gateway_process_*`).

use std::fs;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Linux's `USER_HZ` (clock ticks per second in `/proc/*/stat`): 100 on every
/// architecture Linux supports for user space.
const TICKS_PER_SECOND: f64 = 100.0;
/// `/proc/self/stat` reports the resident set in pages.
const PAGE_SIZE: f64 = 4096.0;

#[derive(Debug)]
pub(super) struct ProcessCollector;

/// What one read of `/proc` found.
struct Sample {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_time_seconds: f64,
    open_fds: f64,
}

impl Sample {
    fn read() -> Option<Self> {
        let stat = fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // stat(5) numbers fields from 1 (pid); `fields[0]` is field 3 (state).
        let field = |number: usize| fields.get(number - 3)?.parse::<f64>().ok();
        let cpu_ticks = field(14)? + field(15)?;
        let boot_time = fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|line| line.strip_prefix("btime ")?.trim().parse::<f64>().ok())?;
        let open_fds = fs::read_dir("/proc/self/fd").ok()?.count() as f64;
        Some(Self {
            cpu_seconds: cpu_ticks / TICKS_PER_SECOND,
            virtual_bytes: field(23)?,
            resident_bytes: field(24)? * PAGE_SIZE,
            start_time_seconds: boot_time + field(22)? / TICKS_PER_SECOND,
            open_fds,
        })
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(sample) = Sample::read() else {
            return Ok(());
        };
        let counter = ConstCounter::new(sample.cpu_seconds);
        let cpu = encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            MetricType::Counter,
        )?;
        counter.encode(cpu)?;
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                sample.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                sample.virtual_bytes,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                sample.start_time_seconds,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                sample.open_fds,
            ),
        ];
        for (name, help, value) in gauges {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(value).encode(metric)?;
        }
        Ok(())
    }
}
