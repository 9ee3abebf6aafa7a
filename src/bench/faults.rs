//! Fault latency: the first store to each page of a mapped file, timed in the guest with
//! `CLOCK_MONOTONIC`, for the six configurations of the MAP_SYNC series' table (plus
//! "preallocated, background load" with and without MAP_SYNC), on ext4 and XFS.
//!
//! The series measured ext4 on a ramdisk, on hardware. Here the guest runs under QEMU; under
//! software emulation (TCG) every instruction is emulated, so absolute times are not hardware
//! times. What carries over is the shape: the MAP_SYNC / no MAP_SYNC ratio for each pair, and
//! which faults took the synchronous path (`NEEDDSYNC` in the kernel's `fs_dax` trace events).

use crate::agent::proto::{FaultSize, FsChoice, GuestMsg, Job, LatencyConfig, TraceCounts};
use crate::error::{Error, Result};
use crate::vm::{Assets, Vm, VmConfig};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// What the output says about emulation, in text and JSON.
pub const FRAMING: &str = "Times are measured inside a QEMU guest. Under software emulation (TCG) every \
guest instruction is emulated, so absolute microseconds are not hardware times; the ratios \
(MAP_SYNC / no MAP_SYNC) and the kernel's fault-path counts are what carry over. Use --accel kvm \
on a machine with hardware virtualisation for times closer to the hardware.";

/// One row of the series' table (µs), v3 cover letter, ext4 on a ramdisk, 512 pages.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SeriesRow {
    /// Minimum.
    pub min_us: u64,
    /// Average.
    pub avg_us: u64,
    /// Maximum.
    pub max_us: u64,
}

/// The series' numbers for a configuration (the series had no "preallocated, background load").
pub fn series(c: &LatencyConfig) -> Option<SeriesRow> {
    let r = |min_us, avg_us, max_us| Some(SeriesRow { min_us, avg_us, max_us });
    match (c.preallocated, c.background_load, c.sync) {
        (true, false, false) => r(9, 10, 46),
        (true, false, true) => r(9, 10, 47),
        (false, false, false) => r(21, 22, 70),
        (false, false, true) => r(40, 124, 242),
        (false, true, false) => r(21, 23, 67),
        (false, true, true) => r(94, 112, 181),
        _ => None,
    }
}

/// Options of a bench run.
#[derive(Debug, Clone)]
pub struct Options {
    /// File systems to measure.
    pub fs: Vec<FsChoice>,
    /// Pages faulted per configuration.
    pub pages: u32,
    /// Boots per file system; statistics are medians over them.
    pub repeat: u32,
    /// PTE or PMD faults.
    pub fault_size: FaultSize,
    /// Kernel assets.
    pub assets: Assets,
    /// `tcg` or `kvm`.
    pub accel: String,
    /// Guest RAM in MiB.
    pub mem_mb: u32,
}

/// One configuration on one file system, over all repeats.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// File system.
    pub fs: FsChoice,
    /// "preallocated" or "empty".
    pub file: &'static str,
    /// MAP_SYNC.
    pub sync: bool,
    /// Background writer running.
    pub background_load: bool,
    /// The configuration's name as in the series.
    pub configuration: String,
    /// Median over repeats of each run's minimum (µs).
    pub min_us: f64,
    /// Median over repeats of each run's average (µs).
    pub avg_us: f64,
    /// Median over repeats of each run's maximum (µs).
    pub max_us: f64,
    /// Median over repeats of each run's median (µs): robust to the emulator's outliers.
    pub median_us: f64,
    /// Power-of-two histogram over all samples of all repeats: bucket "lo-hi" µs (hi exclusive) →
    /// count.
    pub histogram: BTreeMap<String, u64>,
    /// Same histogram as (lower bound µs, count), sorted, for plotting.
    #[serde(skip)]
    pub buckets: Vec<(u64, u64)>,
    /// Faults whose result included NEEDDSYNC (sum over repeats).
    pub needdsync_faults: u64,
    /// PTE fault-done events (sum over repeats).
    pub pte_faults: u64,
    /// PMD fault-done events that did not fall back (sum over repeats).
    pub pmd_faults: u64,
    /// PMD fault-done events that fell back to PTEs (sum over repeats): with `--fault-size pmd`,
    /// those stores were timed as PTE faults.
    pub pmd_fallbacks: u64,
    /// `dax_insert_pfn_mkwrite` events (sum over repeats).
    pub insert_pfn_mkwrite: u64,
    /// Samples (pages × repeats).
    pub samples: u64,
    /// Repeats.
    pub repeats: u32,
    /// The series' numbers for this configuration, when it had it.
    pub series: Option<SeriesRow>,
}

/// MAP_SYNC over no-MAP_SYNC for one (fs, file, load) pair.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// File system.
    pub fs: FsChoice,
    /// "preallocated" or "empty".
    pub file: &'static str,
    /// Background writer running.
    pub background_load: bool,
    /// avg(MAP_SYNC) / avg(no MAP_SYNC), measured here.
    pub avg_ratio: f64,
    /// median(MAP_SYNC) / median(no MAP_SYNC), measured here.
    pub median_ratio: f64,
    /// The same ratio in the series' table, when it had both rows.
    pub series_avg_ratio: Option<f64>,
}

/// The whole bench result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// How to read the times.
    pub note: &'static str,
    /// Guest kernel.
    pub kernel: String,
    /// Accelerator.
    pub accel: String,
    /// PTE or PMD.
    pub fault_size: FaultSize,
    /// Pages per configuration.
    pub pages: u32,
    /// Rows.
    pub rows: Vec<Row>,
    /// Ratios.
    pub ratios: Vec<Ratio>,
}

/// Power-of-two bucket lower bound (µs) of a time in ns: 0 for < 1 µs, else 2^floor(log2 µs).
pub fn bucket(ns: u64) -> u64 {
    let us = ns / 1000;
    if us == 0 { 0 } else { 1u64 << (63 - us.leading_zeros()) }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Run the guest once on `fs` and return every configuration's samples and trace counts.
fn one_boot(
    opts: &Options,
    fs: FsChoice,
    work: &Path,
    kernel: &mut String,
) -> Result<Vec<(LatencyConfig, Vec<u64>, TraceCounts)>> {
    let mut cfg = VmConfig::new(opts.assets.clone(), work, fs);
    cfg.accel = opts.accel.clone();
    cfg.mem_mb = opts.mem_mb;
    let span = u64::from(opts.pages) * opts.fault_size.bytes();
    if span > cfg.image_size / 4 {
        return Err(Error::Usage(format!(
            "{} pages of {} bytes do not fit the {} MiB namespace: use fewer pages",
            opts.pages,
            opts.fault_size.bytes(),
            cfg.image_size >> 20
        )));
    }
    let mut job = Job::new(fs, true, "latency-all", opts.pages);
    job.fault_size = opts.fault_size;
    let _lock = crate::vm::exclusive_lock()?;
    let mut vm = Vm::boot(&cfg, &job)?;
    *kernel = vm.ready().kernel.clone();
    let mut out = Vec::new();
    loop {
        match vm.recv(Duration::from_secs(600))? {
            GuestMsg::Probe(_) => {}
            GuestMsg::LatencyRun { config, ns, trace } => {
                if ns.len() != opts.pages as usize {
                    return Err(Error::External(format!(
                        "the guest timed {} pages, {} were asked",
                        ns.len(),
                        opts.pages
                    )));
                }
                out.push((config, ns, trace));
            }
            GuestMsg::Done { .. } => break,
            GuestMsg::Error { message } => {
                return Err(Error::External(format!("the guest failed: {message}")));
            }
            other => return Err(Error::External(format!("unexpected message from the guest: {other:?}"))),
        }
    }
    vm.finish(Duration::from_secs(120))?;
    if out.len() != LatencyConfig::all().len() {
        return Err(Error::External(format!("the guest measured {} configurations, not 8", out.len())));
    }
    Ok(out)
}

/// Run the bench; `progress` is told each finished boot.
pub fn run(opts: &Options, progress: &mut dyn FnMut(&str)) -> Result<Report> {
    if opts.repeat == 0 || opts.pages == 0 {
        return Err(Error::Usage("--repeat and --pages must be at least 1".into()));
    }
    let mut kernel = String::new();
    // (fs, config) -> per-repeat (min, avg, max), all samples, trace sums
    type Acc = (Vec<(f64, f64, f64, f64)>, Vec<u64>, TraceCounts);
    let mut acc: BTreeMap<(u8, LatencyConfig), Acc> = BTreeMap::new();
    for (fi, &fs) in opts.fs.iter().enumerate() {
        for r in 0..opts.repeat {
            let work = tempfile::Builder::new()
                .prefix("daxray-bench-")
                .tempdir()
                .map_err(|e| Error::External(format!("scratch folder: {e}")))?;
            // One retry: a guest under software emulation on a busy host can fail to boot.
            let runs = match one_boot(opts, fs, work.path(), &mut kernel) {
                Ok(r) => r,
                Err(e) => {
                    progress(&format!("{} boot {} failed, retrying once: {e}", fs.name(), r + 1));
                    one_boot(opts, fs, work.path(), &mut kernel)?
                }
            };
            for (c, ns, t) in runs {
                let e = acc
                    .entry((fi as u8, c))
                    .or_insert_with(|| (Vec::new(), Vec::new(), TraceCounts::default()));
                let us: Vec<f64> = ns.iter().map(|&n| n as f64 / 1000.0).collect();
                let min = us.iter().copied().fold(f64::INFINITY, f64::min);
                let max = us.iter().copied().fold(0.0, f64::max);
                let avg = us.iter().sum::<f64>() / us.len().max(1) as f64;
                let mut sorted = us.clone();
                let med = median(&mut sorted);
                e.0.push((min, avg, max, med));
                e.1.extend(ns);
                e.2.pte_faults += t.pte_faults;
                e.2.pmd_faults += t.pmd_faults;
                e.2.pmd_fallbacks += t.pmd_fallbacks;
                e.2.needdsync += t.needdsync;
                e.2.insert_pfn_mkwrite += t.insert_pfn_mkwrite;
                e.2.lost_events |= t.lost_events;
            }
            progress(&format!("{} boot {}/{} done", fs.name(), r + 1, opts.repeat));
        }
    }
    let mut rows = Vec::new();
    for ((fi, c), (stats, samples, t)) in acc {
        let fs = opts.fs[fi as usize];
        let mut mins: Vec<f64> = stats.iter().map(|s| s.0).collect();
        let mut avgs: Vec<f64> = stats.iter().map(|s| s.1).collect();
        let mut maxs: Vec<f64> = stats.iter().map(|s| s.2).collect();
        let mut meds: Vec<f64> = stats.iter().map(|s| s.3).collect();
        let mut hist: BTreeMap<u64, u64> = BTreeMap::new();
        for &n in &samples {
            *hist.entry(bucket(n)).or_default() += 1;
        }
        rows.push(Row {
            fs,
            file: if c.preallocated { "preallocated" } else { "empty" },
            sync: c.sync,
            background_load: c.background_load,
            configuration: c.label(),
            min_us: median(&mut mins),
            avg_us: median(&mut avgs),
            max_us: median(&mut maxs),
            median_us: median(&mut meds),
            histogram: hist.iter().map(|(&lo, &n)| (format!("{lo}-{}", (lo * 2).max(1)), n)).collect(),
            buckets: hist.into_iter().collect(),
            needdsync_faults: t.needdsync,
            pte_faults: t.pte_faults,
            pmd_faults: t.pmd_faults,
            pmd_fallbacks: t.pmd_fallbacks,
            insert_pfn_mkwrite: t.insert_pfn_mkwrite,
            samples: samples.len() as u64,
            repeats: opts.repeat,
            series: series(&c),
        });
    }
    // Keep the series' order within each file system.
    let order = LatencyConfig::all();
    let pos = |r: &Row| {
        order
            .iter()
            .position(|c| {
                c.preallocated == (r.file == "preallocated")
                    && c.background_load == r.background_load
                    && c.sync == r.sync
            })
            .unwrap_or(usize::MAX)
    };
    rows.sort_by_key(|r| (opts.fs.iter().position(|f| *f == r.fs).unwrap_or(usize::MAX), pos(r)));
    let mut ratios = Vec::new();
    for s in rows.iter().filter(|r| r.sync) {
        if let Some(n) = rows
            .iter()
            .find(|r| !r.sync && r.fs == s.fs && r.file == s.file && r.background_load == s.background_load)
        {
            let series_avg_ratio = match (s.series, n.series) {
                (Some(a), Some(b)) if b.avg_us > 0 => Some(a.avg_us as f64 / b.avg_us as f64),
                _ => None,
            };
            ratios.push(Ratio {
                fs: s.fs,
                file: s.file,
                background_load: s.background_load,
                avg_ratio: if n.avg_us > 0.0 { s.avg_us / n.avg_us } else { 0.0 },
                median_ratio: if n.median_us > 0.0 { s.median_us / n.median_us } else { 0.0 },
                series_avg_ratio,
            });
        }
    }
    Ok(Report {
        note: FRAMING,
        kernel,
        accel: opts.accel.clone(),
        fault_size: opts.fault_size,
        pages: opts.pages,
        rows,
        ratios,
    })
}

/// The report as text: the table beside the series', ratios, histograms, trace counts.
pub fn render_text(r: &Report) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "Fault latency, {} pages per configuration, {} faults, guest kernel {}, accel {}\n",
        r.pages,
        if r.fault_size == FaultSize::Pmd { "2 MiB PMD" } else { "4 KiB PTE" },
        r.kernel,
        r.accel
    ));
    s.push_str(&format!("Note: {FRAMING}\n\n"));
    s.push_str(&format!(
        "{:<16} {:<52} {:>9} {:>9} {:>9} {:>9} | {:>14} | {:>9} {:>5} {:>5} {:>8}\n",
        "fs",
        "configuration",
        "min µs",
        "avg µs",
        "max µs",
        "p50 µs",
        "series min/avg/max",
        "NEEDDSYNC",
        "PTE",
        "PMD",
        "fallback"
    ));
    for row in &r.rows {
        let ser = row
            .series
            .map(|x| format!("{}/{}/{}", x.min_us, x.avg_us, x.max_us))
            .unwrap_or_else(|| "-".into());
        s.push_str(&format!(
            "{:<16} {:<52} {:>9.1} {:>9.1} {:>9.1} {:>9.1} | {:>18} | {:>9} {:>5} {:>5} {:>8}\n",
            row.fs.name(),
            row.configuration,
            row.min_us,
            row.avg_us,
            row.max_us,
            row.median_us,
            ser,
            row.needdsync_faults,
            row.pte_faults,
            row.pmd_faults,
            row.pmd_fallbacks
        ));
    }
    let fell_back: u64 = r.rows.iter().map(|x| x.pmd_fallbacks).sum();
    if r.fault_size == FaultSize::Pmd && fell_back > 0 {
        s.push_str(&format!(
            "\n{fell_back} PMD faults fell back to PTEs (dax_pmd_fault_done FALLBACK): those stores were PTE faults\n"
        ));
    }
    s.push_str("\nMAP_SYNC / no MAP_SYNC (average, and median, latency):\n");
    for q in &r.ratios {
        s.push_str(&format!(
            "  {:<16} file {:<12} {:<20} here avg {:>6.2}x  p50 {:>6.2}x   series avg {}\n",
            q.fs.name(),
            q.file,
            if q.background_load { "background load" } else { "no background load" },
            q.avg_ratio,
            q.median_ratio,
            q.series_avg_ratio.map(|x| format!("{x:.2}x")).unwrap_or_else(|| "-".into())
        ));
    }
    s.push_str("\nHistograms (µs, power-of-two buckets, all samples of all repeats):\n");
    for row in &r.rows {
        s.push_str(&format!("  {} — {}\n", row.fs.name(), row.configuration));
        let peak = row.buckets.iter().map(|b| b.1).max().unwrap_or(1).max(1);
        for &(lo, n) in &row.buckets {
            let bar = "#".repeat(((n * 40).div_ceil(peak)) as usize);
            s.push_str(&format!("    {:>7} -> {:<7} : {:>6} |{bar:<40}|\n", lo, (lo * 2).max(1), n));
        }
    }
    s
}
