//! Make an fsdax namespace through sysfs alone (no ndctl): unbind the raw namespace from
//! `nd_pmem`, configure the region's pfn seed device (uuid, mode `pmem` so the struct pages live
//! on the device, align, parent namespace) and bind it to `nd_pmem`. The kernel writes the
//! `NVDIMM_PFN_INFO` block at byte 4096 of the namespace; the block device then starts at
//! `dataoff`.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const BUS: &str = "/sys/bus/nd/devices";
const PMEM_DRIVER: &str = "/sys/bus/nd/drivers/nd_pmem";

/// The fsdax namespace that was made.
#[derive(Debug, Clone)]
pub struct FsdaxNamespace {
    /// Block device, e.g. `/dev/pmem0`.
    pub device: String,
    /// Where the data starts from the start of the namespace (= of the image file), in bytes.
    pub dataoff: u64,
    /// The pfn device in sysfs, e.g. `pfn0.0`.
    pub pfn: String,
    /// Guest physical address of the block device's first byte (the pfn device's `resource`):
    /// file system byte `b` is at physical address `data_phys + b`.
    pub data_phys: u64,
}

fn write_attr(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value)
        .map_err(|e| Error::External(format!("writing {value:?} to {}: {e}", path.display())))
}

fn read_attr(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).map_err(|e| Error::io(path, e))
}

fn read_hex(path: &Path) -> Result<u64> {
    let s = read_attr(path)?;
    u64::from_str_radix(s.trim_start_matches("0x"), 16)
        .map_err(|e| Error::External(format!("{}: {s:?} is not hex: {e}", path.display())))
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if t0.elapsed() > timeout {
            return Err(Error::External(format!("{what} did not appear within {timeout:?}")));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Make the fsdax namespace on the first NVDIMM namespace with the given `align` (4096 or
/// 2 MiB) and return its block device and `dataoff`.
pub fn make_fsdax(align: u64) -> Result<FsdaxNamespace> {
    if align != 4096 && align != (2 << 20) {
        return Err(Error::Usage(format!("namespace align {align}: use 4096 or 2097152")));
    }
    let ns_name = wait_for(
        "an NVDIMM namespace in /sys/bus/nd/devices (is nfit loaded?)",
        Duration::from_secs(20),
        || {
            let mut names: Vec<String> = std::fs::read_dir(BUS)
                .ok()?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("namespace"))
                .collect();
            names.sort();
            names.into_iter().next()
        },
    )?;
    let ns_dir = PathBuf::from(BUS).join(&ns_name);
    let region = std::fs::canonicalize(&ns_dir)
        .map_err(|e| Error::io(&ns_dir, e))?
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| Error::External(format!("{} has no parent region", ns_dir.display())))?;
    if Path::new(PMEM_DRIVER).join(&ns_name).exists() {
        write_attr(&Path::new(PMEM_DRIVER).join("unbind"), &ns_name)?;
    }
    let pfn = read_attr(&region.join("pfn_seed"))?;
    if pfn.is_empty() {
        return Err(Error::External(format!("{} has no pfn seed device", region.display())));
    }
    let pfn_dir = PathBuf::from(BUS).join(&pfn);
    let uuid = read_attr(Path::new("/proc/sys/kernel/random/uuid"))?;
    write_attr(&pfn_dir.join("uuid"), &uuid)?;
    write_attr(&pfn_dir.join("mode"), "pmem")?;
    write_attr(&pfn_dir.join("align"), &align.to_string())?;
    write_attr(&pfn_dir.join("namespace"), &ns_name)?;
    write_attr(&Path::new(PMEM_DRIVER).join("bind"), &pfn)?;
    let block = wait_for(&format!("the block device of {pfn}"), Duration::from_secs(20), || {
        let b = std::fs::read_dir(pfn_dir.join("block")).ok()?.filter_map(|e| e.ok()).next()?;
        Some(b.file_name().to_string_lossy().into_owned())
    })?;
    let device = format!("/dev/{block}");
    wait_for(&device, Duration::from_secs(20), || Path::new(&device).exists().then_some(()))?;
    let start = read_hex(&ns_dir.join("resource"))?;
    let data = read_hex(&pfn_dir.join("resource"))?;
    let dataoff = data.checked_sub(start).ok_or_else(|| {
        Error::External(format!("{pfn} resource {data:#x} is below the namespace's {start:#x}"))
    })?;
    Ok(FsdaxNamespace { device, dataoff, pfn, data_phys: data })
}
