//! The system under test for one scenario: a simulator (manual clock, no rate
//! limit) and a gateway pointed at it, both started fresh with the scenario's
//! gateway flags, or the running ones given by `--simulator-url/--gateway-url`.
//!
//! With `--replicas N` (N > 1) it is a scaled-out deployment instead: a
//! `redis-server` and N gateways sharing it (`--redis-url`) in front of the one
//! simulator, as docs/scaling-out.md deploys them. Scenarios that spread their
//! clients ([`Stack::gateways`]) measure the replicas together; the others load
//! the first.

use std::path::PathBuf;

use crate::clients::SimulatorControl;
use crate::error::BenchError;
use crate::processes::{self, Launch, Service};

/// The account every scenario uses (the gateway's default account).
pub(crate) const DEFAULT_ACCOUNT: &str = "bebebebebebebebebebebebebebebebe";

/// Where the processes come from; built once from the command line.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    /// Directory of `registrar-gateway` and `loadgen`.
    pub bin_dir: PathBuf,
    /// Running processes to use instead of starting them.
    pub external: Option<External>,
    /// The gateway's default account.
    pub account: String,
    /// Gateways started, sharing one Redis when more than one.
    pub replicas: usize,
}

/// Processes started by someone else.
#[derive(Debug, Clone)]
pub(crate) struct External {
    /// `http://HOST:PORT` of the gateway.
    pub gateway_url: String,
    /// `http://HOST:PORT` of the simulator.
    pub simulator_url: String,
    /// The gateway's pid, for RSS figures.
    pub gateway_pid: Option<u32>,
}

/// A simulator and a gateway in front of it (or several sharing a Redis).
#[derive(Debug)]
pub(crate) struct Stack {
    /// The gateway, the first replica (declared first so it stops first: it talks
    /// to the simulator).
    pub gateway: Service,
    /// The other replicas, with `--replicas` above 1.
    others: Vec<Service>,
    /// The Redis the replicas share, with `--replicas` above 1 (stopped after them).
    _redis: Option<Service>,
    /// The simulator, held so it runs (and stops) with the stack.
    _simulator: Service,
    /// The simulator's control API.
    pub control: SimulatorControl,
}

impl Setup {
    /// The gateway executable.
    pub(crate) fn gateway_bin(&self) -> PathBuf {
        self.bin_dir.join("registrar-gateway")
    }

    /// Starts a simulator alone (or uses the running one).
    pub(crate) async fn simulator(&self) -> Result<Service, BenchError> {
        if let Some(external) = &self.external {
            return Ok(Service::external(&external.simulator_url, None));
        }
        let args = [
            "simulate",
            "--rate-limit",
            "0",
            "--manual-clock",
            "--max-workflows",
            "1000000",
        ];
        processes::start(Launch {
            name: "simulator",
            program: &self.gateway_bin(),
            args: args.map(str::to_owned).to_vec(),
            ready_path: "/__sim/stats",
        })
        .await
    }

    /// Starts a simulator and a gateway run with `gateway_flags` (or uses the running
    /// ones); with `--replicas` above 1, a Redis and that many gateways sharing it.
    pub(crate) async fn stack(&self, gateway_flags: &[String]) -> Result<Stack, BenchError> {
        let simulator = self.simulator().await?;
        let (redis, mut gateways) = match &self.external {
            Some(external) => {
                let gateway = Service::external(&external.gateway_url, external.gateway_pid);
                (None, vec![gateway])
            }
            None => self.start_gateways(&simulator, gateway_flags).await?,
        };
        let gateway = gateways.remove(0);
        let control = SimulatorControl::new(&simulator.url)?;
        if !control.clock_is_manual().await? {
            return Err(BenchError::Unexpected(
                "the simulator must run with --manual-clock so workflows change only when advanced"
                    .to_owned(),
            ));
        }
        Ok(Stack {
            gateway,
            others: gateways,
            _redis: redis,
            _simulator: simulator,
            control,
        })
    }

    /// One gateway, or `replicas` of them sharing a Redis started for them.
    async fn start_gateways(
        &self,
        simulator: &Service,
        flags: &[String],
    ) -> Result<(Option<Service>, Vec<Service>), BenchError> {
        if self.replicas <= 1 {
            let gateway = self.start_gateway(simulator, flags).await?;
            return Ok((None, vec![gateway]));
        }
        let redis = processes::start_redis().await?;
        let mut flags = flags.to_vec();
        flags.extend(["--redis-url".to_owned(), redis.url.clone()]);
        let mut gateways = Vec::with_capacity(self.replicas);
        for _ in 0..self.replicas {
            gateways.push(self.start_gateway(simulator, &flags).await?);
        }
        Ok((Some(redis), gateways))
    }

    /// Starts one gateway in front of `simulator`.
    async fn start_gateway(
        &self,
        simulator: &Service,
        flags: &[String],
    ) -> Result<Service, BenchError> {
        let mut args = vec![
            "--base-url".to_owned(),
            format!("{}/client/v4", simulator.url),
            "--api-token".to_owned(),
            "bench-token".to_owned(),
            "--account-id".to_owned(),
            self.account.clone(),
            // The scenarios measure the gateway, not its upstream budget (which the
            // simulator started with --rate-limit 0 does not need).
            "--upstream-budget".to_owned(),
            "100000000".to_owned(),
            // Every simulated client connects from 127.0.0.1: one client, as fair
            // shares count them, which must not be the limit measured.
            "--client-budget-share".to_owned(),
            "1".to_owned(),
            "--max-subscriptions-per-client".to_owned(),
            "100000000".to_owned(),
        ];
        args.extend_from_slice(flags);
        processes::start(Launch {
            name: "gateway",
            program: &self.gateway_bin(),
            args,
            ready_path: "/healthz",
        })
        .await
    }
}

impl Stack {
    /// Every gateway: the first, then the other replicas.
    pub(crate) fn gateways(&self) -> impl Iterator<Item = &Service> {
        std::iter::once(&self.gateway).chain(&self.others)
    }

    /// The gateways' RSS summed, in KiB; `None` when one is unknown.
    pub(crate) fn rss_kib(&self) -> Option<u64> {
        self.gateways().map(Service::rss_kib).sum()
    }
}
