//! Test-only misbehaviour of the guest agent ([`Misbehave`], set in the job by host tests): the
//! guest breaks the protocol on purpose so that tests can show the host ends the run with a clear
//! error, kills QEMU and removes its files. The replay engine and the bench never set it.

use super::Link;
use super::proto::{GuestMsg, MAX_LINE, Misbehave, Store};
use crate::error::{Error, Result};
use std::io::Write;
use std::time::Duration;

fn log(msg: &str) {
    eprintln!("daxray-agent: misbehaving: {msg}");
}

/// Sleep for ever: the agent stops talking but the machine stays up.
fn silence() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// An empty line every `every`, for ever.
fn trickle(link: &mut dyn Link, every: Duration) -> Result<()> {
    loop {
        link.send_raw(b" \n")?;
        std::thread::sleep(every);
    }
}

/// Misbehave as asked. Returns only with an error (when the misbehaviour itself failed).
pub fn act(m: Misbehave, link: &mut dyn Link) -> Result<()> {
    log(m.name());
    match m {
        Misbehave::Garbage => {
            // Terminal escapes on the console too: the host must not print them raw.
            eprintln!("daxray-agent: \x1b[2J\x1b]0;owned\x07 escape sequences");
            link.send_raw(b"\x00\xff\xfe not json at all {{{ \x1b[2J\n")?;
            silence()
        }
        Misbehave::LongLine => {
            let chunk = [b'x'; 64 << 10];
            let mut sent = 0usize;
            while sent <= MAX_LINE {
                link.send_raw(&chunk)?;
                sent += chunk.len();
            }
            silence()
        }
        Misbehave::UnknownMessage => {
            link.send_raw(b"{\"RunCommand\":{\"argv\":[\"/bin/sh\",\"-c\",\"rm -rf /\"]}}\n")?;
            silence()
        }
        Misbehave::ForeignStore => {
            link.send(&GuestMsg::Store(Store {
                seq: 0,
                file: "/etc/passwd".into(),
                ino: 2,
                offset: 0,
                len: 4096,
                sha256: "0".repeat(64),
            }))?;
            silence()
        }
        Misbehave::Hang => silence(),
        Misbehave::Panic => {
            let r = std::fs::write("/proc/sysrq-trigger", b"c");
            Err(Error::External(format!("the sysrq crash did not panic the kernel: {r:?}")))
        }
        Misbehave::Flood => {
            std::thread::spawn(|| {
                let line = "daxray-agent: flood ".repeat(10) + "\n";
                let mut err = std::io::stderr();
                loop {
                    if err.write_all(line.as_bytes()).is_err() {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            });
            trickle(link, Duration::from_millis(10))
        }
        Misbehave::Trickle => trickle(link, Duration::from_millis(100)),
        Misbehave::FloodValid => {
            let report = super::probe::probe(std::path::Path::new(super::MOUNT_POINT))?;
            loop {
                link.send(&GuestMsg::Probe(report.clone()))?;
            }
        }
    }
}
