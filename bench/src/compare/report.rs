//! The report of one run: the table, the JSON and the plot, with each
//! row's ratios to the baselines.

use super::{GenInfo, LOSS_FREE, Opts, Row};
use dataplane::xsk::bench::{LAT_BUCKET_NS, LAT_BUCKETS};

/// The rows of one run with their ratios to the baselines.
pub(super) struct Report {
    rows: Vec<Row>,
    opts: Opts,
    /// Loss-free and overload rates of the AF_XDP ceiling.
    ceiling: (f64, f64),
    /// Loss-free and overload rates of the nftables path, unless broken.
    kernel: Option<(f64, f64)>,
    /// The generator and its ceiling.
    generator: GenInfo,
}

impl Report {
    pub(super) fn new(rows: Vec<Row>, opts: &Opts, generator: GenInfo) -> Self {
        let rates = |r: &Row| (r.loss_free, r.overload);
        let ceiling = rows
            .iter()
            .find(|r| r.name == "af_xdp-swap")
            .map_or((0.0, 0.0), rates);
        // A baseline that forwarded under 1 % of what it was offered is
        // broken (its namespace's kernel path did not forward), not a yardstick: no ratio to it.
        let kernel = rows
            .iter()
            .find(|r| r.name == "nft-dnat")
            .filter(|r| r.overload >= r.offered / 100.0)
            .map(rates);
        Self {
            rows,
            opts: *opts,
            ceiling,
            kernel,
            generator,
        }
    }

    /// Rows that delivered, flat out, at least 90 % of what the generator
    /// reflects flat out: their overload rate is the generator's, not
    /// theirs, and a ratio between them says nothing.
    fn at_ceiling(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|r| r.name != "xdp-tx" && r.overload >= 0.9 * self.generator.ceiling.1)
            .map(|r| r.name.as_str())
            .collect()
    }

    /// Print the table; write the JSON and the plot where asked.
    pub(super) fn publish(&self, json: Option<&str>, svg: Option<&str>) -> Result<(), String> {
        print!("{}", self.table());
        if let Some(path) = json {
            std::fs::write(path, self.json()).map_err(|e| format!("{path}: {e}"))?;
        }
        if let Some(path) = svg {
            std::fs::write(path, self.svg()).map_err(|e| format!("{path}: {e}"))?;
        }
        Ok(())
    }

    /// Connections a second at the row's loss-free rate (its client
    /// frames over the frames of a connection), for connection traffic.
    fn conn_rate(r: &Row) -> Option<f64> {
        (r.per_conn > 0).then(|| r.client_loss_free / f64::from(r.per_conn))
    }

    /// Ratio of `x` to `base`, none when the base measured nothing.
    fn ratio(x: f64, base: f64) -> Option<f64> {
        (base > 0.0).then(|| x / base)
    }

    fn vs_ceiling(&self, r: &Row) -> (Option<f64>, Option<f64>) {
        (
            Self::ratio(r.loss_free, self.ceiling.0),
            Self::ratio(r.overload, self.ceiling.1),
        )
    }

    fn vs_kernel(&self, r: &Row) -> (Option<f64>, Option<f64>) {
        self.kernel.map_or((None, None), |k| {
            (Self::ratio(r.loss_free, k.0), Self::ratio(r.overload, k.1))
        })
    }

    /// "N flows", or the row's own count in a flow sweep.
    fn flows(&self) -> String {
        match self.opts.flows {
            0 => "swept".to_string(),
            n => n.to_string(),
        }
    }

    fn table(&self) -> String {
        use std::fmt::Write;
        let o = &self.opts;
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        // The sink's last bucket holds everything longer: say so.
        let top = (u64::from(LAT_BUCKETS) - 1) * LAT_BUCKET_NS;
        let us = |r: &Row, i: usize| {
            r.latency.map_or("-".to_string(), |l| {
                if l[i] >= top {
                    format!(">{:.0}", top as f64 / 1e3)
                } else {
                    format!("{:.1}", l[i] as f64 / 1e3)
                }
            })
        };
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}-byte {}{}, {} flows ({} ports); flat out {} s, loss-free search (< {}% loss) and latency (at half \
             the loss-free rate) in {} s trials",
            o.size,
            o.traffic.name(),
            if o.ipv6 { "/IPv6" } else { "" },
            self.flows(),
            o.ports.name(),
            o.secs,
            LOSS_FREE * 100.0,
            o.trial
        );
        let _ = writeln!(
            s,
            "generator {} ({}); its ceiling, flat out with its frames reflected by XDP_TX: \
             {:.3} Mpps sent, {:.3} Mpps back:",
            self.generator.kind.name(),
            self.generator.why,
            self.generator.ceiling.0 / 1e6,
            self.generator.ceiling.1 / 1e6
        );
        let _ = writeln!(
            s,
            "{:<15} {:>8} {:>8} {:>8} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>6} {:>7} {:>8}",
            "dut",
            "offered",
            "overload",
            "lossfree",
            "ovl/lf",
            "p50 µs",
            "p99 µs",
            "p99.9 µs",
            "lf/afxdp",
            "ovl/afxdp",
            "lf/nft",
            "cpu %",
            "errors",
            "kept@2x",
            "lf kconn/s"
        );
        for r in &self.rows {
            let (lf_c, ovl_c) = self.vs_ceiling(r);
            let (lf_k, _) = self.vs_kernel(r);
            let _ = writeln!(
                s,
                "{:<15} {:>8.3} {:>8.3} {:>8.3} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>6} {:>7} {:>8}",
                r.name,
                r.offered / 1e6,
                r.overload / 1e6,
                r.loss_free / 1e6,
                f(Self::ratio(r.overload, r.loss_free)),
                us(r, 0),
                us(r, 1),
                us(r, 2),
                f(lf_c),
                f(ovl_c),
                f(lf_k),
                r.cpu
                    .iter()
                    .map(|c| format!("{c:.0}"))
                    .collect::<Vec<_>>()
                    .join("/"),
                r.errors,
                f(r.twice.and_then(|(_, got)| Self::ratio(got, r.loss_free))),
                Self::conn_rate(r).map_or("-".to_string(), |c| format!("{:.1}", c / 1e3))
            );
        }
        let _ = writeln!(
            s,
            "rates in Mpps; cpu % per core during the flat-out run (generator and DUT share them); \
             kept@2x: delivered / loss-free when offered twice the loss-free rate; \
             lf kconn/s: connections a second at the loss-free rate (cps: opened; teardown: opened and closed)"
        );
        let capped = self.at_ceiling();
        if !capped.is_empty() {
            let _ = writeln!(
                s,
                "at the generator's ceiling (their overload is a floor, not a measure): {}",
                capped.join(", ")
            );
        }
        s
    }

    fn json(&self) -> String {
        let num = |v: Option<f64>| v.map_or("null".to_string(), |v| format!("{v:.4}"));
        let rows: Vec<String> = self
            .rows
            .iter()
            .map(|r| {
                let (lf_c, ovl_c) = self.vs_ceiling(r);
                let (lf_k, ovl_k) = self.vs_kernel(r);
                let lat = r.latency.map_or("null".to_string(), |l| {
                    format!("{{\"p50_ns\":{},\"p99_ns\":{},\"p999_ns\":{}}}", l[0], l[1], l[2])
                });
                let cpu: Vec<String> = r.cpu.iter().map(|c| format!("{c:.1}")).collect();
                let twice = r.twice.map_or("null".to_string(), |(sent, got)| {
                    format!("{{\"offered_pps\":{sent:.0},\"delivered_pps\":{got:.0}}}")
                });
                format!(
                    "{{\"dut\":\"{}\",\"offered_pps\":{:.0},\"overload_pps\":{:.0},\"loss_free_pps\":{:.0},\
                     \"latency_at_half_loss_free\":{lat},\"cpu_busy_percent\":[{}],\"errors\":{},\
                     \"loss_free_vs_af_xdp\":{},\"overload_vs_af_xdp\":{},\"loss_free_vs_nft\":{},\
                     \"overload_vs_nft\":{},\"at_twice_loss_free\":{twice},\"loss_free_connections_per_second\":{}}}",
                    r.name,
                    r.offered,
                    r.overload,
                    r.loss_free,
                    cpu.join(","),
                    r.errors,
                    num(lf_c),
                    num(ovl_c),
                    num(lf_k),
                    num(ovl_k),
                    num(Self::conn_rate(r))
                )
            })
            .collect();
        format!(
            "{{\"frame_bytes\":{},\"ip\":{},\"traffic\":\"{}\",\"flows\":{},\"ports\":\"{}\",\"flat_out_seconds\":{},\"trial_seconds\":{},\
             \"loss_free_threshold\":{},\"generator\":{{\"name\":\"{}\",\"why\":\"{}\",\"ceiling_sent_pps\":{:.0},\
             \"ceiling_back_pps\":{:.0},\"rows_at_ceiling\":[{}]}},\"results\":[{}]}}\n",
            self.opts.size,
            if self.opts.ipv6 { 6 } else { 4 },
            self.opts.traffic.name(),
            // null in a flow sweep: each row's name says its count.
            match self.opts.flows {
                0 => "null".to_string(),
                n => n.to_string(),
            },
            self.opts.ports.name(),
            self.opts.secs,
            self.opts.trial,
            LOSS_FREE,
            self.generator.kind.name(),
            self.generator.why.replace(['"', '\\'], "'"),
            self.generator.ceiling.0,
            self.generator.ceiling.1,
            self.at_ceiling()
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(","),
            rows.join(",")
        )
    }

    fn svg(&self) -> String {
        crate::plot::bars(
            &format!(
                "{}-byte {}, {} flows: Mpps per forwarder",
                self.opts.size,
                self.opts.traffic.name(),
                self.flows()
            ),
            &self
                .rows
                .iter()
                .map(|r| crate::plot::Bar {
                    label: r.name.clone(),
                    values: [r.loss_free / 1e6, r.overload / 1e6],
                    note: r
                        .latency
                        .map(|l| format!("p99 {:.1} µs", l[1] as f64 / 1e3))
                        .unwrap_or_default(),
                })
                .collect::<Vec<_>>(),
            ["loss-free", "overload"],
        )
    }
}
