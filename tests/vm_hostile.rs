//! A hostile guest on the real kernel under QEMU (TCG): the guest agent, told so by its job
//! (`Job.misbehave`, test-only), breaks the protocol after the job is confirmed: garbage bytes, an
//! over-long line, an undefined message, a Store for a file the job never made, silence, a real
//! kernel panic (sysrq), a console flood, a trickle of empty lines, a flood of valid messages.
//! Each case must end the host's wait with a clear error naming what happened, within the event
//! timeout; QEMU must already be dead when the error comes back (before the `Vm` is dropped); the
//! guest's private folder (sockets, QEMU's log) must be gone after the drop, with no new
//! `daxray-vm-*` folder left in the temporary directory; and the console log must stay under its
//! cap (after a flood, only its tail is kept).
//!
//! Needs root, qemu-system-x86 and busybox-static, and the kernel assets (`daxray vm setup`).
//! Guests run one at a time (a test-local lock, and the cross-process VM lock).
//! Set DAXRAY_SKIP_ROOT_TESTS=1 to skip (it says so).

mod common;

use daxray::agent::proto::{FsChoice, GuestMsg, Job, Misbehave};
use daxray::vm::{Vm, VmConfig};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One guest at a time in this process (the VM lock is re-entrant within a process).
static SERIAL: Mutex<()> = Mutex::new(());

/// The per-message timeout in these tests.
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);
/// The console cap in these tests, and what is kept of a flooded console.
const CONSOLE_LIMIT: u64 = 2 << 20;
const CONSOLE_KEEP: u64 = 64 << 10;

/// The `daxray-vm-*` folders in the temporary directory.
fn vm_scratch_dirs() -> BTreeSet<String> {
    std::fs::read_dir(std::env::temp_dir())
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("daxray-vm-"))
                .collect()
        })
        .unwrap_or_default()
}

fn pid_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

struct Outcome {
    error: String,
    took: Duration,
    console_bytes: u64,
    console_tail: String,
}

/// Boot a guest that misbehaves as `m`, wait for messages until the host gives up, and check
/// the clean-up. Returns what happened.
fn hostile(m: Misbehave) -> Option<Outcome> {
    let assets = common::vm_assets("vm_hostile")?;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _lock = daxray::vm::exclusive_lock().expect("VM lock");
    let before = vm_scratch_dirs();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut job = Job::new(FsChoice::Ext4, true, "seq-sparse", 4);
    job.misbehave = Some(m);
    let mut cfg = VmConfig::new(assets, dir.path(), FsChoice::Ext4);
    // Boots took 11-15 s on a loaded 2-core machine; six times that is the limit.
    cfg.boot_timeout = Duration::from_secs(90);
    cfg.event_timeout = EVENT_TIMEOUT;
    cfg.console_limit = CONSOLE_LIMIT;
    cfg.console_keep = CONSOLE_KEEP;
    let t0 = Instant::now();
    let mut vm = Vm::boot(&cfg, &job).unwrap_or_else(|e| panic!("{}: boot: {e}", m.name()));
    let boot = t0.elapsed();
    let pid = vm.qemu_pid();
    let scratch = vm.scratch_dir().to_path_buf();
    assert!(pid_exists(pid) && vm.qemu_running(), "{}: QEMU is not running after boot", m.name());
    assert!(scratch.is_dir(), "{}: no scratch folder {}", m.name(), scratch.display());
    let t1 = Instant::now();
    let mut probes = 0;
    let error = loop {
        match vm.recv(vm.event_timeout()) {
            Ok(GuestMsg::Probe(_)) if probes == 0 => probes += 1,
            Ok(other) => panic!("{}: the host accepted {other:?} from a misbehaving guest", m.name()),
            Err(e) => break e.to_string(),
        }
    };
    let took = t1.elapsed();
    // The error itself killed QEMU: no drop needed.
    assert!(!vm.qemu_running(), "{}: QEMU still runs after the error", m.name());
    assert!(!pid_exists(pid), "{}: QEMU's process {pid} is still there after the error", m.name());
    let console_bytes = std::fs::metadata(&cfg.console_log).map(|m| m.len()).unwrap_or(0);
    let console_tail = daxray::vm::log_tail(&cfg.console_log, 8192);
    drop(vm);
    assert!(!scratch.exists(), "{}: {} left behind", m.name(), scratch.display());
    let after = vm_scratch_dirs();
    let left: Vec<_> = after.difference(&before).collect();
    assert!(
        left.is_empty(),
        "{}: new daxray-vm-* folders left in the temporary directory: {left:?}",
        m.name()
    );
    assert_eq!(probes, 1, "{}: the guest's Probe did not arrive before the misbehaviour", m.name());
    // Guest text in the error (console tail, quoted lines) is printable: no raw escapes.
    assert!(
        !error.chars().any(|c| c.is_control() && c != '\n' && c != '\t'),
        "{}: control characters in the error: {error:?}",
        m.name()
    );
    // Every case but silence ends well before the event timeout; silence ends at it.
    let limit = EVENT_TIMEOUT + Duration::from_secs(10);
    assert!(took < limit, "{}: the host needed {took:?} to give up (limit {limit:?})", m.name());
    // The console log never exceeds its cap plus what the watchdog can miss between two looks.
    assert!(console_bytes <= CONSOLE_LIMIT, "{}: console log is {console_bytes} bytes", m.name());
    eprintln!(
        "vm_hostile {:<16} boot {:>6.1} s, host gave up after {:>5.1} s, console {:>8} bytes: {}",
        m.name(),
        boot.as_secs_f64(),
        took.as_secs_f64(),
        console_bytes,
        error.lines().next().unwrap_or("")
    );
    Some(Outcome { error, took, console_bytes, console_tail })
}

fn first_line(o: &Outcome) -> &str {
    o.error.lines().next().unwrap_or("")
}

#[test]
fn garbage_bytes_end_the_run() {
    let Some(o) = hostile(Misbehave::Garbage) else { return };
    assert!(first_line(&o).contains("malformed message from the guest"), "{}", o.error);
    assert!(o.took < Duration::from_secs(10), "{:?}", o.took);
    // The guest wrote terminal escapes to its console: the error shows them escaped.
    assert!(o.console_tail.contains('\x1b'), "the console has no escape sequence");
    assert!(o.error.contains("\\u{1b}[2J"), "{}", o.error);
}

#[test]
fn an_over_long_line_ends_the_run() {
    let Some(o) = hostile(Misbehave::LongLine) else { return };
    assert!(first_line(&o).contains("flooded its channel"), "{}", o.error);
    assert!(first_line(&o).contains("without a newline"), "{}", o.error);
}

#[test]
fn an_undefined_message_is_not_acted_on() {
    let Some(o) = hostile(Misbehave::UnknownMessage) else { return };
    let l = first_line(&o);
    assert!(l.contains("malformed message from the guest") && l.contains("unknown variant"), "{}", o.error);
    assert!(o.took < Duration::from_secs(10), "{:?}", o.took);
}

#[test]
fn a_store_for_a_file_the_job_never_named_is_refused() {
    let Some(o) = hostile(Misbehave::ForeignStore) else { return };
    let l = first_line(&o);
    assert!(l.contains("broke the protocol") && l.contains("never made"), "{}", o.error);
    assert!(l.contains("/etc/passwd") && l.contains("/f0"), "{}", o.error);
    assert!(o.took < Duration::from_secs(10), "{:?}", o.took);
}

#[test]
fn a_silent_guest_times_out() {
    let Some(o) = hostile(Misbehave::Hang) else { return };
    assert!(first_line(&o).contains("no message from the guest within 20s"), "{}", o.error);
    assert!(o.took >= EVENT_TIMEOUT, "gave up after {:?}, before the timeout", o.took);
}

#[test]
fn a_kernel_panic_is_reported_with_the_console() {
    let Some(o) = hostile(Misbehave::Panic) else { return };
    assert!(first_line(&o).contains("the guest kernel panicked"), "{}", o.error);
    // The error carries the console's tail, which shows the kernel's own panic lines.
    assert!(o.error.contains("guest console"), "{}", o.error);
    assert!(
        first_line(&o).contains("Kernel panic - not syncing") && first_line(&o).contains("sysrq"),
        "{}",
        o.error
    );
    assert!(o.console_tail.contains("Kernel panic"), "{}", o.console_tail);
    assert!(o.took < Duration::from_secs(15), "{:?}", o.took);
}

#[test]
fn a_console_flood_is_cut_and_capped() {
    let Some(o) = hostile(Misbehave::Flood) else { return };
    assert!(first_line(&o).contains("flooded its console"), "{}", o.error);
    // Only the tail is kept: the cap's worth, plus a one-line note.
    assert!(o.console_bytes <= CONSOLE_KEEP + 200, "kept {} bytes of console", o.console_bytes);
    assert!(o.console_bytes >= CONSOLE_KEEP / 2, "kept only {} bytes of console", o.console_bytes);
    assert!(o.console_tail.contains("daxray-agent: flood"), "{}", o.console_tail);
    assert!(o.took < EVENT_TIMEOUT, "{:?}", o.took);
}

#[test]
fn a_trickle_of_empty_lines_cannot_keep_the_host_waiting() {
    let Some(o) = hostile(Misbehave::Trickle) else { return };
    assert!(first_line(&o).contains("no message from the guest within 20s"), "{}", o.error);
}

#[test]
fn a_flood_of_valid_messages_is_refused() {
    let Some(o) = hostile(Misbehave::FloodValid) else { return };
    assert!(first_line(&o).contains("broke the protocol: Probe twice"), "{}", o.error);
    assert!(o.took < Duration::from_secs(10), "{:?}", o.took);
}
